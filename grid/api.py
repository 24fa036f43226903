"""REST endpoints: grid locations (GeoJSON in and out), assets, portfolios, network models and power flows."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from accounts.models import Role
from accounts.permissions import HasRole
from accounts.selectors import organisation_get_visible
from flexmarket import imports
from flexmarket.api.imports import ImportJobSerializer, job_accepted
from flexmarket.api.parsers import BoundedJSONParser
from flexmarket.api.viewsets import OrganisationScopedViewSet
from grid import selectors, services
from grid.models import (
    FlexAsset,
    ForecastRun,
    ForecastUpload,
    GridLocation,
    NetworkModel,
    NetworkModelLoad,
    Portfolio,
    PowerFlowRun,
    PrequalificationCheck,
)

FEATURE_COLLECTION = {
    "type": "object",
    "description": "An RFC 7946 GeoJSON FeatureCollection.",
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "features"],
}


class GridLocationSerializer(serializers.ModelSerializer):
    dso = serializers.CharField(source="dso.legal_name", read_only=True)
    geometry = serializers.JSONField(help_text="GeoJSON Polygon or MultiPolygon, [lon, lat] (RFC 7946)")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        default=list,
        help_text="Overlaps with other DSOs' zones found when the zone was written; empty when read later.",
    )

    class Meta:
        model = GridLocation
        fields = [
            "id",
            "name",
            "code",
            "dso",
            "voltage_level",
            "status",
            "status_source",
            "status_reason",
            "geometry",
            "warnings",
        ]
        read_only_fields = ["status_source"]


class GridLocationUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False)
    code = serializers.CharField(required=False)
    voltage_level = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    status_reason = serializers.CharField(required=False, allow_blank=True)
    geometry = serializers.JSONField(required=False)


class GridLocationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Congestion zones. Everyone approved reads outlines and status; only the owning DSO writes."""

    model = GridLocation
    serializer_class = GridLocationSerializer
    filterset_fields = ["status", "voltage_level", "dso"]
    permission_classes = [*OrganisationScopedViewSet.permission_classes, HasRole.of(Role.DSO)]

    def get_visible_queryset(self, actor):
        return selectors.grid_locations_get_visible(actor=actor)

    def create(self, request):
        data = GridLocationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        zone = services.grid_location_create(
            actor=self.get_actor(), **{k: v for k, v in data.validated_data.items() if k != "warnings"}
        )
        return Response(GridLocationSerializer(zone).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=GridLocationUpdateSerializer, responses=GridLocationSerializer)
    def partial_update(self, request, pk=None):
        data = GridLocationUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actor = self.get_actor()
        zone = selectors.grid_location_get_editable(actor=actor, pk=pk)
        zone = services.grid_location_update(actor=actor, grid_location=zone, **data.validated_data)
        return Response(GridLocationSerializer(zone).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        actor = self.get_actor()
        services.grid_location_archive(
            actor=actor, grid_location=selectors.grid_location_get_editable(actor=actor, pk=pk)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/geo+json"): FEATURE_COLLECTION})
    @action(detail=False, url_path="geojson")
    def geojson(self, request):
        """All visible zones as an RFC 7946 FeatureCollection."""
        zones = self.filter_queryset(self.get_queryset())
        return Response(services.grid_locations_as_geojson(zones), content_type="application/geo+json")

    @extend_schema(
        request={"application/json": FEATURE_COLLECTION}, responses={201: GridLocationSerializer(many=True)}
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[BoundedJSONParser])
    def import_geojson(self, request):
        """Import a FeatureCollection (properties: name, code, voltage_level, status). All or nothing."""
        zones = services.grid_locations_import_geojson(actor=self.get_actor(), data=request.data)
        return Response(GridLocationSerializer(zones, many=True).data, status=status.HTTP_201_CREATED)


class FlexAssetSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.legal_name", read_only=True)
    grid_location = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    can_trade = serializers.BooleanField(read_only=True)

    class Meta:
        model = FlexAsset
        fields = [
            "id",
            "name",
            "owner",
            "asset_type",
            "connection_ean",
            "latitude",
            "longitude",
            "grid_location",
            "max_up_kw",
            "max_down_kw",
            "energy_capacity_kwh",
            "ramp_rate_kw_per_min",
            "availability",
            "prequalification",
            "prequalification_reason",
            "can_trade",
        ]
        read_only_fields = ["prequalification", "prequalification_reason"]


class PrequalificationCheckSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="get_item_display", read_only=True)
    mandatory = serializers.BooleanField(read_only=True)
    checked_by = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = PrequalificationCheck
        fields = ["item", "label", "mandatory", "checked", "note", "checked_by", "checked_at"]


class ChecklistUpdateSerializer(serializers.Serializer):
    checked = serializers.ListField(
        child=serializers.ChoiceField(choices=PrequalificationCheck.Item.choices),
        help_text="The items that hold; every other item is unticked",
    )
    notes = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=500), required=False, default=dict
    )


class PrequalificationSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=list(services.PREQUALIFICATION_DECISIONS))
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class AssetTransferSerializer(serializers.Serializer):
    new_owner = serializers.IntegerField(
        help_text="Id of the approved ESP organisation taking over the connection"
    )
    reason = serializers.CharField()


class AssetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """FlexAssets: ESPs register; the DSO of the asset's zone prequalifies."""

    model = FlexAsset
    serializer_class = FlexAssetSerializer
    filterset_fields = ["prequalification", "asset_type", "grid_location"]

    def get_visible_queryset(self, actor):
        return selectors.assets_get_visible(actor=actor)

    def create(self, request):
        data = FlexAssetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asset = services.asset_register(actor=self.get_actor(), **data.validated_data)
        return Response(FlexAssetSerializer(asset).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses={201: FlexAssetSerializer(many=True), 202: ImportJobSerializer},
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_csv(self, request):
        """CSV with columns name, asset_type, connection_ean, latitude, longitude, max_up_kw, max_down_kw[, ...].

        Files above FLEXMARKET_IMPORT_INLINE_MAX_BYTES answer 202 with an import job (`/import-jobs/{id}/`)."""
        upload = request.FILES.get("file")
        if upload is None:
            raise serializers.ValidationError({"file": ["Attach a CSV file."]})
        if imports.runs_in_background(upload):
            return job_accepted(
                imports.import_job_create(actor=self.get_actor(), kind="assets", upload=upload)
            )
        assets = services.assets_import_csv(actor=self.get_actor(), file=upload.file)
        return Response(FlexAssetSerializer(assets, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PrequalificationSerializer, responses=FlexAssetSerializer)
    @action(detail=True, methods=["post"])
    def prequalify(self, request, pk=None):
        data = PrequalificationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actor = self.get_actor()
        asset = services.asset_prequalify(
            actor=actor, asset=selectors.asset_get_prequalifiable(actor=actor, pk=pk), **data.validated_data
        )
        return Response(FlexAssetSerializer(asset).data)

    @extend_schema(responses=PrequalificationCheckSerializer(many=True))
    @action(detail=True, methods=["get"])
    def checklist(self, request, pk=None):
        """The prequalification checklist of the asset (the owner and the zone's DSO see it)."""
        return Response(
            PrequalificationCheckSerializer(selectors.asset_checklist(self.get_object()), many=True).data
        )

    @extend_schema(request=ChecklistUpdateSerializer, responses=PrequalificationCheckSerializer(many=True))
    @checklist.mapping.post
    def checklist_update(self, request, pk=None):
        """The zone's DSO ticks checklist items; approval needs every mandatory one."""
        data = ChecklistUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actor = self.get_actor()
        checks = services.asset_checklist_update(
            actor=actor, asset=selectors.asset_get_prequalifiable(actor=actor, pk=pk), **data.validated_data
        )
        return Response(PrequalificationCheckSerializer(checks, many=True).data)

    @extend_schema(request=AssetTransferSerializer, responses={201: FlexAssetSerializer})
    @action(detail=True, methods=["post"])
    def transfer(self, request, pk=None):
        """FMO: move a connection to another ESP (the old asset is archived; the new one awaits prequalification)."""
        data = AssetTransferSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actor = self.get_actor()
        successor = services.asset_transfer(
            actor=actor,
            asset=self.get_object(),
            new_owner=organisation_get_visible(actor=actor, pk=data.validated_data["new_owner"]),
            reason=data.validated_data["reason"],
        )
        return Response(FlexAssetSerializer(successor).data, status=status.HTTP_201_CREATED)


class PortfolioSerializer(serializers.ModelSerializer):
    assets = serializers.PrimaryKeyRelatedField(many=True, queryset=FlexAsset._default_manager.none())
    capabilities = serializers.SerializerMethodField()

    class Meta:
        model = Portfolio
        fields = ["id", "name", "grid_location", "assets", "capabilities"]
        read_only_fields = ["grid_location"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        if actor is not None:
            self.fields["assets"].child_relation.queryset = selectors.assets_get_owned(actor=actor)

    def get_capabilities(self, obj) -> dict:
        return {key: str(value) for key, value in services.portfolio_capabilities(obj).items()}


class PortfolioViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    model = Portfolio
    serializer_class = PortfolioSerializer

    def get_visible_queryset(self, actor):
        return selectors.portfolios_get_visible(actor=actor)

    def create(self, request):
        actor = self.get_actor()
        data = PortfolioSerializer(data=request.data, actor=actor)
        data.is_valid(raise_exception=True)
        portfolio = services.portfolio_create(actor=actor, **data.validated_data)
        return Response(PortfolioSerializer(portfolio).data, status=status.HTTP_201_CREATED)


class NetworkModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = NetworkModel
        fields = ["id", "name", "version", "source", "bus_count", "line_count", "created_at"]


class NetworkModelCreateSerializer(serializers.Serializer):
    name = serializers.CharField()
    example = serializers.ChoiceField(choices=list(services.network.EXAMPLES), required=False)
    network_json = serializers.CharField(required=False, help_text="pandapower.to_json() output")


class NetworkModelLoadSerializer(serializers.ModelSerializer):
    source = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField(
        help_text="Poll this until `state` is succeeded or failed."
    )
    network_model_url = serializers.SerializerMethodField(
        help_text="The network model created, once `state` is succeeded; null before and on failure."
    )

    class Meta:
        model = NetworkModelLoad
        fields = [
            "id",
            "name",
            "source",
            "state",
            "error",
            "network_model",
            "network_model_url",
            "status_url",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_source(self, load) -> str:
        return load.example or "upload"

    def get_status_url(self, load) -> str:
        return reverse("network-model-load-detail", args=[load.pk])

    def get_network_model_url(self, load) -> str | None:
        if load.network_model_id is None:
            return None
        return reverse("network-model-detail", args=[load.network_model_id])


class PowerFlowRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = PowerFlowRun
        fields = [
            "id",
            "network_model",
            "scenario",
            "load_scaling",
            "generation_scaling",
            "state",
            "error",
            "max_line_loading_percent",
            "min_voltage_pu",
            "max_voltage_pu",
            "results",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class PowerFlowRequestSerializer(serializers.Serializer):
    scenario = serializers.CharField(default="base")
    load_scaling = serializers.FloatField(default=1.0)
    generation_scaling = serializers.FloatField(default=1.0)


class NetworkModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    model = NetworkModel
    enqueue_actions = ("create", "power_flow")
    serializer_class = NetworkModelSerializer
    permission_classes = [*OrganisationScopedViewSet.permission_classes, HasRole.of(Role.DSO)]

    def get_visible_queryset(self, actor):
        return selectors.network_models_get_visible(actor=actor)

    @extend_schema(request=NetworkModelCreateSerializer, responses={202: NetworkModelLoadSerializer})
    def create(self, request):
        """Queue the load (parsing, zone mapping) on a worker: 202 with the run; poll `status_url` (`Location`)."""
        data = NetworkModelCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        load = services.network_model_load_request(actor=self.get_actor(), **data.validated_data)
        body = NetworkModelLoadSerializer(load).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})

    @extend_schema(request=PowerFlowRequestSerializer, responses={202: PowerFlowRunSerializer})
    @action(detail=True, methods=["post"], url_path="power-flow")
    def power_flow(self, request, pk=None):
        data = PowerFlowRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.power_flow_run_request(
            actor=self.get_actor(), network_model=self.get_object(), **data.validated_data
        )
        return Response(PowerFlowRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class PowerFlowRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    model = PowerFlowRun
    serializer_class = PowerFlowRunSerializer

    def get_visible_queryset(self, actor):
        return selectors.power_flow_runs_get_visible(actor=actor)


class NetworkModelLoadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Network loads queued by `POST /network-models/`: state, error on failure, the model on success."""

    model = NetworkModelLoad
    serializer_class = NetworkModelLoadSerializer
    filterset_fields = ["state"]
    permission_classes = [*OrganisationScopedViewSet.permission_classes, HasRole.of(Role.DSO)]

    def get_visible_queryset(self, actor):
        return selectors.network_model_loads_get_visible(actor=actor)


class ForecastRunSerializer(serializers.ModelSerializer):
    zone_states = serializers.JSONField(
        read_only=True,
        help_text='{"<zone id>": "0012..."}: one digit per PTU of the day, 0 normal, 1 watch, 2 congested',
    )
    results = serializers.JSONField(
        read_only=True,
        help_text="Per element arrays over the PTUs: line_loading_percent, trafo_loading_percent, bus_voltage_pu "
        "(rows in the order of line_index, trafo_index, bus_index)",
    )

    class Meta:
        model = ForecastRun
        fields = [
            "id",
            "network_model",
            "delivery_day",
            "load_scaling",
            "generation_scaling",
            "state",
            "error",
            "ptu_count",
            "congested_ptus",
            "max_line_loading_percent",
            "min_voltage_pu",
            "max_voltage_pu",
            "seconds",
            "inputs",
            "zone_states",
            "needs",
            "results",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class NeedBlockSerializer(serializers.Serializer):
    grid_location = serializers.IntegerField()
    direction = serializers.CharField(help_text='"up" (less demand or more generation) or "down"')
    ptu_start = serializers.DateTimeField(help_text="UTC start of the block's first PTU")
    first_ptu = serializers.IntegerField(help_text="Index of that PTU in the delivery day")
    quantities_kw = serializers.ListField(child=serializers.FloatField(), help_text="kW needed per PTU")


class ForecastRequestSerializer(serializers.Serializer):
    network_model = serializers.IntegerField()
    delivery_day = serializers.DateField()
    load_scaling = serializers.FloatField(default=1.0)
    generation_scaling = serializers.FloatField(default=1.0)


class ForecastUploadSerializer(serializers.ModelSerializer):
    class Meta:
        model = ForecastUpload
        fields = ["id", "network_model", "delivery_day", "row_count", "created_at"]
        read_only_fields = fields


class ForecastUploadRequestSerializer(serializers.Serializer):
    network_model = serializers.IntegerField()
    delivery_day = serializers.DateField()
    file = serializers.FileField(help_text="CSV: bus,zone,ptu_start,p_kw,q_kvar")


class ForecastRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Congestion forecasts of the DSO's networks: a zone x PTU traffic light and loading/voltage per PTU."""

    model = ForecastRun
    enqueue_actions = ("create",)
    body_lookup_actions = ("create",)  # the network model
    serializer_class = ForecastRunSerializer
    filterset_fields = ["state", "delivery_day", "network_model"]
    permission_classes = [*OrganisationScopedViewSet.permission_classes, HasRole.of(Role.DSO)]

    def get_visible_queryset(self, actor):
        return selectors.forecast_runs_get_visible(actor=actor)

    @extend_schema(request=ForecastRequestSerializer, responses={202: ForecastRunSerializer})
    def create(self, request):
        """Queue a forecast for a delivery day: 202 with the run; poll it until `state` is succeeded or failed."""
        data = ForecastRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        model = selectors.network_model_get_visible(actor=self.get_actor(), pk=fields.pop("network_model"))
        run = services.forecast_run_request(actor=self.get_actor(), network_model=model, **fields)
        return Response(ForecastRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: NeedBlockSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def needs(self, request, pk=None):
        """The flexibility the forecast needs, as blocks of consecutive PTUs per zone and direction (the shape a
        FlexRequest takes: `POST /api/v1/flex-requests/from-needs/` posts them)."""
        blocks = selectors.forecast_need_blocks(self.get_object())
        return Response(NeedBlockSerializer(blocks, many=True).data)


class ForecastUploadViewSet(mixins.ListModelMixin, OrganisationScopedViewSet):
    """The DSO's own per-bus or per-zone forecasts (CSV); a bad row rejects the whole file with row errors."""

    model = ForecastUpload
    serializer_class = ForecastUploadSerializer
    body_lookup_actions = ("create",)  # the network model
    parser_classes = [MultiPartParser]
    permission_classes = [*OrganisationScopedViewSet.permission_classes, HasRole.of(Role.DSO)]

    def get_visible_queryset(self, actor):
        return selectors.forecast_uploads_get_visible(actor=actor)

    @extend_schema(
        request={"multipart/form-data": ForecastUploadRequestSerializer},
        responses={201: ForecastUploadSerializer},
    )
    def create(self, request):
        data = ForecastUploadRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = selectors.network_model_get_visible(
            actor=self.get_actor(), pk=data.validated_data["network_model"]
        )
        upload = services.forecast_upload_csv(
            actor=self.get_actor(),
            network_model=model,
            delivery_day=data.validated_data["delivery_day"],
            file=data.validated_data["file"].file,
        )
        return Response(ForecastUploadSerializer(upload).data, status=status.HTTP_201_CREATED)
