"""REST endpoints: sessions, FlexRequests, FlexOffers, contracts and their activation schedules."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from flexmarket import imports
from flexmarket.api.imports import ImportJobSerializer, job_accepted
from flexmarket.api.viewsets import OrganisationScopedViewSet
from grid.models import FlexAsset, GridLocation, Portfolio
from grid.selectors import (
    assets_get_owned,
    assets_get_prequalification_queue,
    forecast_run_get_visible,
    grid_locations_get_visible,
    portfolios_get_visible,
)
from trading import exports, price_selectors, selectors, services
from trading.models import (
    AvailabilityAgreement,
    ClearingReplay,
    ClearingRunNetwork,
    Contract,
    FlexOffer,
    FlexRequest,
    Market,
    MarketSession,
    Product,
)
from trading.services import needs as needs_services

ID_MAX = 2**63 - 1  # ids are 64-bit

CSV_UPLOAD = {
    "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
}


PRODUCT_FIELDS = [
    "id",
    "market",
    "code",
    "name",
    "kind",
    "direction",
    "ptu_minutes",
    "clearing_rule",
    "gate_closure_rule",
    "gate_closure_local_time",
    "gate_closure_minutes_before",
    "sessions_ahead_days",
    "min_quantity_kw",
    "quantity_step_kw",
    "price_floor",
    "price_cap",
    "min_duration_ptus",
    "max_duration_ptus",
    "max_ramp_kw",
    "accepts_initiator_orders",
    "accepts_aggressor_orders",
    "accepts_block_offers",
    "baseline_method",
    "baseline_params",
    "delivery_tolerance",
    "penalty_rule",
    "penalty_factor",
    "penalty_price",
    "fee_eur_per_mwh",
    "network_aware",
    "solver_time_limit_seconds",
    "solver_mip_gap",
    "is_active",
]


class ProductSerializer(serializers.ModelSerializer):
    """A product and every rule an order of it must keep (docs/trading.md, "Product rules")."""

    # A wall-clock time in the market's zone, not an instant: "HH:MM" (an RFC 3339 time would need an offset).
    gate_closure_local_time = serializers.SerializerMethodField(
        help_text="Day-ahead gate closure: HH:MM on D-1 in the market's time zone"
    )

    def get_gate_closure_local_time(self, product) -> str:
        return product.gate_closure_local_time.strftime("%H:%M")

    class Meta:
        model = Product
        fields = PRODUCT_FIELDS
        read_only_fields = PRODUCT_FIELDS


class MarketSerializer(serializers.ModelSerializer):
    grid_locations = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="Zones the market covers (empty: every zone)"
    )
    products = serializers.SerializerMethodField(help_text="Ids of the market's products (`/products/`)")

    class Meta:
        model = Market
        fields = [
            "id",
            "code",
            "name",
            "time_zone",
            "holiday_country",
            "grid_locations",
            "products",
            "is_active",
        ]
        read_only_fields = fields

    def get_products(self, market) -> list[int]:
        return [product.pk for product in market.catalogue]


@extend_schema_view(
    list=extend_schema(summary="The markets: time zone, zones and products"),
    retrieve=extend_schema(summary="One market"),
)
class MarketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    model = Market
    serializer_class = MarketSerializer

    def get_visible_queryset(self, actor):
        return selectors.markets_get_visible(actor=actor)


@extend_schema_view(
    list=extend_schema(summary="The product catalogue with every order rule"),
    retrieve=extend_schema(summary="One product"),
)
class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    model = Product
    serializer_class = ProductSerializer
    filterset_fields = ["market", "kind", "direction", "clearing_rule", "network_aware"]

    def get_visible_queryset(self, actor):
        return selectors.products_get_visible(actor=actor)


class SessionSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.__str__")
    product_id = serializers.IntegerField(read_only=True, help_text="The product (`/products/{id}/`)")
    network_aware = serializers.BooleanField(
        source="product.network_aware",
        read_only=True,
        help_text="Cleared subject to the DSO's network, priced at D-LMPs (`/network/` has the result)",
    )

    class Meta:
        model = MarketSession
        fields = [
            "id",
            "product",
            "product_id",
            "network_aware",
            "delivery_day",
            "delivery_start",
            "delivery_end",
            "gate_closure",
            "state",
        ]


def _grid_field(
    help_text: str = "One row per bus (or branch) in `buses` (`branches`) order, one column per PTU; null: no price",
) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)), help_text=help_text
    )


class BindingSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["line", "trafo", "voltage"])
    index = serializers.IntegerField(help_text="Line or transformer index, or the bus of a voltage limit")
    side = serializers.IntegerField(
        help_text="1 at the upper limit (flow in its from-to direction), -1 the lower"
    )


class BranchSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["line", "trafo"])
    index = serializers.IntegerField(help_text="The line's or transformer's index in the network model")


class AcResidualSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["line", "trafo", "voltage", "power_flow"])
    index = serializers.IntegerField(
        required=False, help_text="Line or transformer index, or the bus of a voltage (absent for power_flow)"
    )
    loading_percent = serializers.FloatField(
        required=False, help_text="AC loading after clearing, % of rating"
    )
    limit_percent = serializers.FloatField(
        required=False, allow_null=True, help_text="What the clearing allowed, % of rating (100 unless held)"
    )
    vm_pu = serializers.FloatField(required=False, help_text="AC voltage after clearing")
    converged = serializers.BooleanField(
        required=False, help_text="false: the AC power flow did not converge"
    )


class SessionNetworkSerializer(serializers.ModelSerializer):
    run = serializers.IntegerField(source="run_id")
    network_model = serializers.IntegerField(source="network_model_id")
    forecast_run = serializers.IntegerField(source="forecast_run_id", allow_null=True)
    buses = serializers.ListField(child=serializers.IntegerField())
    branches = serializers.SerializerMethodField(help_text="The rows of the branch arrays")
    dlmp = _grid_field()
    dlmp_energy = _grid_field()
    dlmp_congestion = _grid_field()
    dlmp_voltage = _grid_field()
    qlmp = _grid_field(
        "Q-LMP, EUR/Mvarh (paid per Mvarh injected, + , or absorbed, -), one row per bus in `buses` order, one "
        "column per PTU; null: no price; empty: cleared before reactive offers existed"
    )
    qlmp_congestion = _grid_field("The Q-LMP's congestion part (its energy part is always 0)")
    qlmp_voltage = _grid_field("The Q-LMP's voltage part")
    flow_before_mw = _grid_field()
    flow_after_mw = _grid_field()
    flow_limit_mw = _grid_field()
    binding = serializers.DictField(
        child=BindingSerializer(many=True), help_text="PTU index -> the limits binding in that PTU"
    )
    ac_iterations = serializers.IntegerField(
        allow_null=True, help_text="Linear clearings the AC validation made (null: cleared before it existed)"
    )
    ac_feasible = serializers.BooleanField(
        allow_null=True,
        help_text="The AC power flow with the cleared schedule is within every limit + tolerance",
    )
    ac_residuals = serializers.DictField(
        child=AcResidualSerializer(many=True),
        help_text="PTU index -> what the AC power flow still finds beyond limit + tolerance (empty: none)",
    )
    ac_loading_percent = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="AC loading (% of rating) after clearing, one row per branch in `branches` order, one column "
        "per PTU (empty: cleared before AC validation existed)",
    )
    ac_history = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per clearing: iteration, PTUs re-linearised, largest loading (MVA) and voltage (p.u.) excess "
        "left, violating PTUs",
    )

    class Meta:
        model = ClearingRunNetwork
        fields = [
            "run",
            "network_model",
            "forecast_run",
            "point",
            "buses",
            "branches",
            "dlmp",
            "dlmp_energy",
            "dlmp_congestion",
            "dlmp_voltage",
            "qlmp",
            "qlmp_congestion",
            "qlmp_voltage",
            "flow_before_mw",
            "flow_after_mw",
            "flow_limit_mw",
            "binding",
            "ac_iterations",
            "ac_feasible",
            "ac_residuals",
            "ac_loading_percent",
            "ac_history",
        ]
        read_only_fields = fields

    @extend_schema_field(BranchSerializer(many=True))
    def get_branches(self, stored) -> list[dict]:
        return [{"kind": kind, "index": index} for kind, index in stored.branches]


class SessionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    model = MarketSession
    serializer_class = SessionSerializer
    filterset_fields = ["state", "delivery_day", "product"]

    def get_visible_queryset(self, actor):
        return selectors.sessions_get_visible(actor=actor)

    @extend_schema(responses={200: SessionNetworkSerializer})
    @action(detail=True, url_path="network")
    def network(self, request, pk=None):
        """A network-aware session's current clearing: the network and operating point used, D-LMPs per bus and
        PTU with their energy, congestion and voltage parts (EUR/MWh), flows before and after, limits and binding
        constraints per PTU. The market operator and the DSO whose network it is; 404 for anyone else."""
        found = selectors.session_network_get_visible(actor=self.get_actor(), session=self.get_object())
        return Response(SessionNetworkSerializer(found).data)


class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A primary key looked up among the objects the acting organisation may use (`scope(actor)`, a selector).

    The selector runs only when the field is given, so an order without, say, `answers_request` does not build
    the opportunities query; without an actor (the OpenAPI schema) the field's own empty queryset is used.
    """

    def __init__(self, *, scope, **kwargs):
        self.scope = scope
        super().__init__(**kwargs)

    def get_queryset(self):
        actor = getattr(self.root, "actor", None)
        return self.scope(actor) if actor is not None else super().get_queryset()


def _zones_for_orders(actor):
    # Orders read a zone's name, status and archival, never its outline: leave the polygons in the database.
    return grid_locations_get_visible(actor=actor).defer("geometry", "display_geometry")


class OrderSerializer(serializers.ModelSerializer):
    grid_location = ScopedPrimaryKeyField(
        queryset=GridLocation._default_manager.none(), scope=_zones_for_orders
    )
    # The market comes along: the submit service reads its zones and time zone (one query fewer per order).
    product = serializers.PrimaryKeyRelatedField(
        queryset=Product._default_manager.filter(is_active=True).select_related("market")
    )
    quantities_kw = serializers.ListField(child=serializers.FloatField(min_value=0), allow_empty=False)

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor


class FlexRequestSerializer(OrderSerializer):
    class Meta:
        model = FlexRequest
        fields = [
            "id",
            "grid_location",
            "product",
            "direction",
            "ptu_start",
            "quantities_kw",
            "remaining_kw",
            "price",
            "order_mode",
            "valid_until",
            "external_id",
            "state",
            "state_reason",
            "is_tso",
            "session",
            "created_at",
        ]
        read_only_fields = ["remaining_kw", "state", "state_reason", "is_tso", "session", "created_at"]
        extra_kwargs = {"direction": {"required": False}}


class FlexOfferSerializer(OrderSerializer):
    grid_location = serializers.PrimaryKeyRelatedField(read_only=True)
    asset = ScopedPrimaryKeyField(
        queryset=FlexAsset._default_manager.none(),
        scope=lambda actor: assets_get_owned(actor=actor).defer(
            "grid_location__geometry", "grid_location__display_geometry"
        ),
        required=False,
        allow_null=True,
    )
    portfolio = ScopedPrimaryKeyField(
        queryset=Portfolio._default_manager.none(),
        scope=lambda actor: portfolios_get_visible(actor=actor).filter(owner=actor.organisation),
        required=False,
        allow_null=True,
    )
    answers_request = ScopedPrimaryKeyField(
        queryset=FlexRequest._default_manager.none(),
        scope=lambda actor: selectors.opportunities_get(actor=actor),
        required=False,
        allow_null=True,
    )

    class Meta:
        model = FlexOffer
        fields = [
            "id",
            "grid_location",
            "product",
            "direction",
            "ptu_start",
            "quantities_kw",
            "remaining_kw",
            "price",
            "order_mode",
            "valid_until",
            "external_id",
            "state",
            "state_reason",
            "asset",
            "portfolio",
            "min_quantity_kw",
            "all_or_nothing",
            "min_consecutive_ptus",
            "max_consecutive_ptus",
            "tso_eligible",
            "answers_request",
            "q_min_kvar",
            "q_max_kvar",
            "q_price",
            "session",
            "created_at",
        ]
        read_only_fields = ["grid_location", "remaining_kw", "state", "state_reason", "session", "created_at"]
        extra_kwargs = {"direction": {"required": False}}


class OrderViewSetMixin:
    """List, retrieve, create (calls the submit service) and DELETE (revokes)."""

    submit = None
    serializer_class = None

    def create(self, request):
        actor = self.get_actor()
        data = self.serializer_class(data=request.data, actor=actor)
        data.is_valid(raise_exception=True)
        order = type(self).submit(
            actor=actor, **{k: v for k, v in data.validated_data.items() if v is not None}
        )
        data.instance = order  # the answer reuses the fields built for the input
        return Response(data.data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        order = services.order_cancel(actor=self.get_actor(), order=self.get_object())
        return Response(self.serializer_class(order).data)

    def _import(self, request, kind: str):
        upload = request.FILES.get("file")
        if upload is None:
            raise serializers.ValidationError({"file": ["Attach a CSV file."]})
        if imports.runs_in_background(upload):
            job = imports.import_job_create(actor=self.get_actor(), kind=f"{kind}s", upload=upload)
            return job_accepted(job)
        orders = services.orders_import_csv(actor=self.get_actor(), kind=kind, file=upload.file)
        return Response(self.serializer_class(orders, many=True).data, status=status.HTTP_201_CREATED)


class FromNeedsSerializer(serializers.Serializer):
    forecast_run = serializers.IntegerField(
        min_value=1, max_value=ID_MAX, help_text="One of your congestion forecasts"
    )
    product = serializers.PrimaryKeyRelatedField(
        queryset=Product._default_manager.filter(is_active=True).select_related("market")
    )
    price = serializers.DecimalField(max_digits=12, decimal_places=4, help_text="Your price limit, EUR/MWh")
    grid_locations = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        required=False,
        max_length=500,
        help_text="Only these zones (default all)",
    )


@extend_schema_view(destroy=extend_schema(responses={200: FlexRequestSerializer}))
class FlexRequestViewSet(
    OrderViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet
):
    """Your FlexRequests (DSO/TSO). `GET /flex-requests/opportunities/` lists open requests where you have approved assets."""

    model = FlexRequest
    serializer_class = FlexRequestSerializer
    submit = staticmethod(services.request_submit)
    filterset_fields = ["state", "grid_location", "product", "session", "is_tso"]
    body_lookup_actions = ("from_needs",)  # the forecast run
    paginated_actions = ("opportunities",)

    def get_visible_queryset(self, actor):
        return selectors.requests_get_visible(actor=actor)

    @extend_schema(
        request=CSV_UPLOAD, responses={201: FlexRequestSerializer(many=True), 202: ImportJobSerializer}
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_csv(self, request):
        """CSV: grid_location_code, product_code, ptu_start, quantities_kw, price[, order_mode]. All or nothing."""
        return self._import(request, "request")

    @extend_schema(responses=FlexRequestSerializer(many=True))
    @action(detail=False)
    def opportunities(self, request):
        page = self.paginate_queryset(
            self.filter_queryset(selectors.opportunities_get(actor=self.get_actor()))
        )
        return self.get_paginated_response(FlexRequestSerializer(page, many=True).data)

    @extend_schema(request=FromNeedsSerializer, responses={201: FlexRequestSerializer(many=True)})
    @action(detail=False, methods=["post"], url_path="from-needs")
    def from_needs(self, request):
        """Post the needs of one of your congestion forecasts (`GET /forecast-runs/{id}/needs/`) as FlexRequests of
        a product, one per block of consecutive PTUs in the product's direction; all or nothing."""
        data = FromNeedsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actor = self.get_actor()
        values = data.validated_data
        run = forecast_run_get_visible(actor=actor, pk=values["forecast_run"])
        posted = needs_services.requests_from_needs(
            actor=actor,
            forecast_run=run,
            product=values["product"],
            price=values["price"],
            grid_location_ids=values.get("grid_locations"),
        )
        return Response(FlexRequestSerializer(posted, many=True).data, status=status.HTTP_201_CREATED)


@extend_schema_view(destroy=extend_schema(responses={200: FlexOfferSerializer}))
class FlexOfferViewSet(
    OrderViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet
):
    """Your FlexOffers (ESP), backed by an approved asset or portfolio."""

    model = FlexOffer
    serializer_class = FlexOfferSerializer
    submit = staticmethod(services.offer_submit)
    filterset_fields = ["state", "grid_location", "product", "session", "asset"]

    def get_visible_queryset(self, actor):
        return selectors.offers_get_visible(actor=actor)

    @extend_schema(
        request=CSV_UPLOAD, responses={201: FlexOfferSerializer(many=True), 202: ImportJobSerializer}
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_csv(self, request):
        """CSV: asset_ean, product_code, ptu_start, quantities_kw, price[, min_quantity_kw, all_or_nothing, tso_eligible,
        q_min_kvar, q_max_kvar, q_price (a reactive range: network-aware products)]."""
        return self._import(request, "offer")


class ContractSerializer(serializers.ModelSerializer):
    buyer = serializers.CharField(source="buyer.legal_name")
    seller = serializers.CharField(source="seller.legal_name")
    grid_location = serializers.CharField(source="grid_location.code")

    class Meta:
        model = Contract
        fields = [
            "id",
            "reference",
            "buyer",
            "seller",
            "grid_location",
            "product",
            "direction",
            "ptu_start",
            "quantities_kw",
            "prices",
            "reactive_kvar",
            "reactive_prices",
            "state",
            "session",
            "offer",
            "request",
            "created_at",
        ]


class ContractViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Contracts you bought or sold, and their activation schedules (`/schedule/?type=csv|json`)."""

    model = Contract
    serializer_class = ContractSerializer
    filterset_fields = ["state", "session", "grid_location"]

    def get_visible_queryset(self, actor):
        return selectors.contracts_get_visible(actor=actor)

    @extend_schema(
        parameters=[OpenApiParameter("type", str, enum=["json", "csv"])],
        responses={(200, "application/json"): dict, (200, "text/csv"): str},
    )
    @action(detail=True, url_path="schedule")
    def schedule(self, request, pk=None):
        contract = self.get_object()
        if request.query_params.get("type", "json") not in ("json", "csv"):
            raise serializers.ValidationError({"type": ["Give json or csv."]})
        if request.query_params.get("type") == "csv":
            response = HttpResponse(exports.schedule_csv(contract), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{contract.reference}-schedule.csv"'
            return response
        return Response(exports.schedule_json(contract))


class ActivationSerializer(serializers.ModelSerializer):
    """An activation in a BRP's balance perimeter: when and how much its connections move, without prices."""

    buyer = serializers.CharField(source="buyer.legal_name")
    seller = serializers.CharField(source="seller.legal_name")
    grid_location = serializers.CharField(source="grid_location.code")
    assets = serializers.SerializerMethodField(
        help_text="EANs of the perimeter's connections in this activation"
    )
    quantities_kw = serializers.SerializerMethodField(
        help_text="kW per PTU from ptu_start, perimeter part only"
    )

    class Meta:
        model = Contract
        fields = [
            "id",
            "reference",
            "buyer",
            "seller",
            "grid_location",
            "direction",
            "ptu_start",
            "quantities_kw",
            "assets",
            "state",
        ]

    def _schedule(self, contract):
        cache = self.context.setdefault("perimeter", {})
        if contract.pk not in cache:
            cache[contract.pk] = selectors.perimeter_schedule(
                contract=contract, brp_id=self.context["brp_id"]
            )
        return cache[contract.pk]

    def get_assets(self, contract) -> list[str]:
        return self._schedule(contract)[0]

    def get_quantities_kw(self, contract) -> list[float]:
        return self._schedule(contract)[1]


class ActivationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """BRP: activations (contracts) of connections in your balance perimeter, with no prices."""

    model = Contract
    serializer_class = ActivationSerializer
    filterset_fields = ["state", "grid_location"]

    def get_visible_queryset(self, actor):
        return selectors.activations_in_perimeter(actor=actor).prefetch_related("offer__portfolio__assets")

    def get_serializer_context(self):
        actor = self.get_actor() if not getattr(self, "swagger_fake_view", False) else None
        return {
            **super().get_serializer_context(),
            "brp_id": actor.organisation.pk if actor and actor.organisation else None,
        }


class OpenDataRowSerializer(serializers.Serializer):
    product = serializers.CharField()
    grid_location = serializers.CharField()
    grid_location_name = serializers.CharField()
    ptu_start = serializers.DateTimeField()
    cleared_kw = serializers.DecimalField(max_digits=16, decimal_places=3)
    trades = serializers.IntegerField()
    average_price = serializers.DecimalField(max_digits=14, decimal_places=4, help_text="volume-weighted")
    lowest_price = serializers.DecimalField(max_digits=14, decimal_places=4)
    highest_price = serializers.DecimalField(max_digits=14, decimal_places=4)


class OpenDataQuerySerializer(serializers.Serializer):
    delivery_day = serializers.DateField()
    product = serializers.CharField(required=False, help_text="Product code")


class OpenDataView(APIView):
    """Anonymised open data for every approved organisation (observers included): cleared volume, trades and
    prices per product, zone and PTU of a delivery day. No buyer or seller is named."""

    @extend_schema(parameters=[OpenDataQuerySerializer], responses=OpenDataRowSerializer(many=True))
    def get(self, request):
        query = OpenDataQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.open_market_data(
            delivery_day=query.validated_data["delivery_day"],
            product_code=query.validated_data.get("product"),
        )
        return Response(OpenDataRowSerializer(rows, many=True).data)


class PricesQuerySerializer(serializers.Serializer):
    product = serializers.PrimaryKeyRelatedField(
        queryset=price_selectors.price_products(), help_text="Product id"
    )
    grid_location = serializers.IntegerField(
        min_value=1, max_value=ID_MAX, help_text="Zone id (of the product's market)"
    )
    delivery_day = serializers.DateField(help_text="Local delivery day of the product's market")
    ptu_start = serializers.DateTimeField(
        required=False, help_text="UTC start of a PTU of the day (default: 17:00 local, the evening peak)"
    )

    def validate_delivery_day(self, value):
        if not price_selectors.price_day_allowed(value):
            raise serializers.ValidationError(price_selectors.PRICE_DAY_MESSAGE)
        return value

    def validate(self, attrs):
        product, day = attrs["product"], attrs["delivery_day"]
        zone = price_selectors.price_zones(product=product).filter(pk=attrs["grid_location"]).first()
        if zone is None:
            raise serializers.ValidationError({"grid_location": f"Not a zone of market {product.market}."})
        starts = price_selectors.price_ptu_starts(product=product, delivery_day=day)
        ptu_start = attrs.get("ptu_start") or starts[price_selectors.evening_index(product, starts)]
        if ptu_start not in starts:
            raise serializers.ValidationError({"ptu_start": "Not the start of a PTU of the delivery day."})
        return {**attrs, "grid_location": zone, "ptu_start": ptu_start}


class PriceLevelSerializer(serializers.Serializer):
    price = serializers.DecimalField(max_digits=14, decimal_places=4)
    kw = serializers.DecimalField(
        max_digits=16, decimal_places=3, help_text="Open kW at this price (all orders)"
    )
    cumulative_kw = serializers.DecimalField(
        max_digits=16, decimal_places=3, help_text="Open kW at this price or better"
    )


class PriceHistorySerializer(serializers.Serializer):
    ptu_start = serializers.DateTimeField()
    average_price = serializers.DecimalField(max_digits=14, decimal_places=4, help_text="volume-weighted")
    kw = serializers.DecimalField(max_digits=16, decimal_places=3, help_text="contracted kW in the PTU")


class PricesSessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    gate_closure = serializers.DateTimeField()


class PricesSerializer(serializers.Serializer):
    product = serializers.CharField(source="product.code")
    grid_location = serializers.CharField(source="grid_location.code")
    grid_location_name = serializers.CharField(source="grid_location.name")
    delivery_day = serializers.DateField()
    ptu_start = serializers.DateTimeField()
    session = PricesSessionSerializer(allow_null=True)
    best_bid = PriceLevelSerializer(allow_null=True, help_text="Highest open FlexRequest price and its kW")
    best_offer = PriceLevelSerializer(allow_null=True, help_text="Lowest open FlexOffer price and its kW")
    spread = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    last_price = serializers.DecimalField(
        max_digits=14, decimal_places=4, allow_null=True, help_text="Price of the latest contract in the PTU"
    )
    last_traded_at = serializers.DateTimeField(allow_null=True)
    indicative_price = serializers.DecimalField(
        max_digits=14,
        decimal_places=4,
        allow_null=True,
        help_text="The auction's uniform price if the gate closed now (open auction sessions only)",
    )
    indicative_note = serializers.CharField()
    history = PriceHistorySerializer(many=True, help_text="The delivery day and the six before it, per PTU")
    bids = PriceLevelSerializer(many=True, help_text="Depth: FlexRequests per price level, highest first")
    offers = PriceLevelSerializer(many=True, help_text="Depth: FlexOffers per price level, lowest first")


class PricesView(APIView):
    """Prices in sight for every approved organisation: for one product, zone and PTU, the best bid and offer,
    the last traded and the indicative auction price, the price history and the depth of the order book. The
    book is summed per price level: no order, buyer or seller is named."""

    @extend_schema(parameters=[PricesQuerySerializer], responses=PricesSerializer)
    def get(self, request):
        query = PricesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        prices = price_selectors.market_prices(
            product=data["product"],
            grid_location=data["grid_location"],
            delivery_day=data["delivery_day"],
            ptu_start=data["ptu_start"],
        )
        return Response(PricesSerializer(prices).data)


def assets_in_zones_of(*, actor):
    """Approved assets in the DSO's zones (what an agreement can name)."""
    return assets_get_prequalification_queue(actor=actor).filter(prequalification="approved")


class AgreementSerializer(serializers.ModelSerializer):
    class Meta:
        model = AvailabilityAgreement
        fields = [
            "id",
            "dso",
            "esp",
            "grid_location",
            "product",
            "asset",
            "portfolio",
            "capacity_kw",
            "availability_price",
            "activation_price",
            "windows",
            "valid_from",
            "valid_to",
            "state",
            "generation_error",
            "generation_failed_at",
            "created_at",
        ]
        read_only_fields = [
            "dso",
            "grid_location",
            "state",
            "generation_error",
            "generation_failed_at",
            "created_at",
        ]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        if actor is not None:
            self.fields["asset"].queryset = assets_in_zones_of(actor=actor)
            # Only portfolios in the DSO's own zones: another's answers "does not exist", like a missing id.
            self.fields["portfolio"].queryset = portfolios_get_visible(actor=actor).filter(
                grid_location__dso=actor.organisation
            )


class AgreementAnswerSerializer(serializers.Serializer):
    accept = serializers.BooleanField()


class AgreementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Long-term availability agreements: a DSO proposes (POST), the ESP answers (`/answer/`)."""

    model = AvailabilityAgreement
    serializer_class = AgreementSerializer

    def get_visible_queryset(self, actor):
        return selectors.agreements_get_visible(actor=actor)

    def create(self, request):
        actor = self.get_actor()
        data = AgreementSerializer(data=request.data, actor=actor)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        backing = values.get("asset") or values.get("portfolio")
        if backing is None:
            raise serializers.ValidationError({"asset": ["Name an asset or a portfolio."]})
        agreement = services.agreement_propose(actor=actor, grid_location=backing.grid_location, **values)
        return Response(AgreementSerializer(agreement).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AgreementAnswerSerializer, responses=AgreementSerializer)
    @action(detail=True, methods=["post"])
    def answer(self, request, pk=None):
        data = AgreementAnswerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agreement = services.agreement_respond(
            actor=self.get_actor(), agreement=self.get_object(), accept=data.validated_data["accept"]
        )
        return Response(AgreementSerializer(agreement).data)


class ReplaySerializer(serializers.ModelSerializer):
    removed_zones = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = ClearingReplay
        fields = [
            "id",
            "session",
            "base_run",
            "state",
            "error",
            "pricing_rule",
            "network",
            "removed_zones",
            "price_cap",
            "reproduced",
            "baseline",
            "result",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class ReplayCreateSerializer(serializers.Serializer):
    session = serializers.IntegerField(min_value=1, max_value=ID_MAX, help_text="A cleared auction session")
    pricing_rule = serializers.ChoiceField(
        choices=["uniform", "pay_as_bid"], required=False, help_text="Default: the stored run's rule"
    )
    removed_zones = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        required=False,
        max_length=500,
        help_text="Zones whose orders leave",
    )
    price_cap = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        required=False,
        allow_null=True,
        help_text="EUR/MWh; offers above leave",
    )
    network = serializers.ChoiceField(
        choices=ClearingReplay.Network.choices,
        required=False,
        help_text="as_cleared (default), on (the DSO's network, D-LMP prices) or off (zone by zone)",
    )


class ReplayViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """What-if replays of cleared sessions: POST queues one (202); poll it until `state` is succeeded or failed.

    `baseline` is the session re-cleared as it was (`reproduced` says it matches the stored run), `result` the
    session cleared with the changes; neither writes contracts.
    """

    model = ClearingReplay
    serializer_class = ReplaySerializer
    enqueue_actions = ("create",)
    body_lookup_actions = ("create",)  # the session
    filterset_fields = ["session", "state"]

    def get_visible_queryset(self, actor):
        return selectors.replays_get_visible(actor=actor)

    @extend_schema(request=ReplayCreateSerializer, responses={202: ReplaySerializer})
    def create(self, request):
        data = ReplayCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actor = self.get_actor()
        values = dict(data.validated_data)
        session = selectors.session_get_visible(actor=actor, pk=values.pop("session"))
        replay = services.replay_request(
            actor=actor,
            session=session,
            pricing_rule=values.get("pricing_rule"),
            removed_zone_ids=values.get("removed_zones"),
            price_cap=values.get("price_cap"),
            network=values.get("network"),
        )
        return Response(ReplaySerializer(replay).data, status=status.HTTP_202_ACCEPTED)
