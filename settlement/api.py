"""REST endpoints: meter readings (bulk), D-prognoses, zone temperatures (bulk), verifications, disputes, settlement statements and invoices."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from flexmarket.api.imports import ImportJobSerializer, job_accepted
from flexmarket.api.viewsets import OrganisationScopedViewSet
from grid.selectors import assets_get_owned, portfolios_get_visible
from settlement import invoices, selectors, services
from settlement.models import (
    DeliveryVerification,
    Dispute,
    MeterDay,
    Prognosis,
    SettlementPeriod,
    SettlementStatement,
    ZoneTemperature,
)


class ReadingSerializer(serializers.Serializer):
    """One reading, expanded from its stored day row (`selectors.readings_expand`)."""

    asset_ean = serializers.CharField(source="asset.connection_ean")
    ptu_start = serializers.DateTimeField()
    kw = serializers.DecimalField(max_digits=14, decimal_places=3)
    source = serializers.CharField()
    version = serializers.IntegerField(help_text="Version of the reading's day (a correction adds one)")
    created_at = serializers.DateTimeField()


class ReadingInputSerializer(serializers.Serializer):
    asset_ean = serializers.CharField()
    ptu_start = serializers.CharField(help_text="ISO 8601 with offset, on a 15-minute boundary")
    kw = serializers.CharField()


class ReadingsBulkSerializer(serializers.Serializer):
    readings = ReadingInputSerializer(many=True, allow_empty=False)


class UploadResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    row_count = serializers.IntegerField()
    changed_count = serializers.IntegerField()
    warnings = serializers.ListField()


class MeterReadingViewSet(mixins.ListModelMixin, OrganisationScopedViewSet):
    """Current readings you may see, one per PTU, ordered by asset, source and PTU start; POST a bulk list (all or
    nothing, idempotent). More than FLEXMARKET_METER_API_INLINE_MAX_READINGS readings become an import job: 202
    with the job, whose rows done and errors `GET /api/v1/import-jobs/{id}/` shows."""

    model = MeterDay
    serializer_class = ReadingSerializer
    enqueue_actions = ("create",)  # changed readings queue verifications
    filterset_fields = ["asset", "source"]

    def get_visible_queryset(self, actor):
        return selectors.meter_days_get_visible(actor=actor)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(selectors.ReadingsOfDays(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response(ReadingSerializer(page, many=True).data)

    @extend_schema(
        request=ReadingsBulkSerializer, responses={201: UploadResultSerializer, 202: ImportJobSerializer}
    )
    def create(self, request):
        data = ReadingsBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        readings = data.validated_data["readings"]
        if len(readings) > settings.FLEXMARKET_METER_API_INLINE_MAX_READINGS:
            return job_accepted(
                services.readings_submit_background(actor=self.get_actor(), readings=readings)
            )
        upload = services.readings_submit(actor=self.get_actor(), readings=readings)
        return Response(UploadResultSerializer(upload).data, status=status.HTTP_201_CREATED)


class PrognosisSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prognosis
        fields = ["id", "asset", "portfolio", "delivery_day", "values_kw", "submitted_at"]
        read_only_fields = ["submitted_at"]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        if actor is not None:
            self.fields["asset"].queryset = assets_get_owned(actor=actor)
            self.fields["portfolio"].queryset = portfolios_get_visible(actor=actor).filter(
                owner=actor.organisation
            )


class PrognosisViewSet(mixins.ListModelMixin, OrganisationScopedViewSet):
    model = Prognosis
    serializer_class = PrognosisSerializer

    def get_visible_queryset(self, actor):
        return (
            Prognosis._default_manager.filter(owner=actor.organisation)
            if actor.organisation
            else Prognosis._default_manager.none()
        )

    def create(self, request):
        actor = self.get_actor()
        data = PrognosisSerializer(data=request.data, actor=actor)
        data.is_valid(raise_exception=True)
        prognosis = services.prognosis_submit(actor=actor, **data.validated_data)
        return Response(PrognosisSerializer(prognosis).data, status=status.HTTP_201_CREATED)


class TemperatureSerializer(serializers.ModelSerializer):
    grid_location_code = serializers.CharField(source="grid_location.code")

    class Meta:
        model = ZoneTemperature
        fields = ["id", "grid_location", "grid_location_code", "start", "celsius", "updated_at"]


class TemperatureInputSerializer(serializers.Serializer):
    grid_location_code = serializers.CharField()
    start = serializers.CharField(help_text="ISO 8601 with offset, on a 15-minute boundary")
    celsius = serializers.CharField(help_text="Outdoor temperature in °C, -90 to 70")


class TemperaturesBulkSerializer(serializers.Serializer):
    temperatures = TemperatureInputSerializer(many=True, allow_empty=False)


class TemperatureResultSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    zones = serializers.ListField(child=serializers.CharField())
    first = serializers.CharField(help_text="Earliest time in the upload, UTC")
    last = serializers.CharField(help_text="Latest time in the upload, UTC")


class TemperatureViewSet(mixins.ListModelMixin, OrganisationScopedViewSet):
    """Zone temperatures for the temperature baseline: a DSO its own zones, the FMO all. POST a bulk list (all
    or nothing; a value for a stored zone and time replaces it)."""

    model = ZoneTemperature
    serializer_class = TemperatureSerializer
    filterset_fields = ["grid_location"]

    def get_visible_queryset(self, actor):
        return selectors.temperatures_get_visible(actor=actor).order_by("grid_location_id", "start")

    @extend_schema(request=TemperaturesBulkSerializer, responses={201: TemperatureResultSerializer})
    def create(self, request):
        data = TemperaturesBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.temperatures_submit(
            actor=self.get_actor(), temperatures=data.validated_data["temperatures"]
        )
        return Response(TemperatureResultSerializer(result).data, status=status.HTTP_201_CREATED)


class VerificationSerializer(serializers.ModelSerializer):
    contract = serializers.CharField(source="contract.reference")

    class Meta:
        model = DeliveryVerification
        fields = [
            "id",
            "contract",
            "state",
            "method",
            "contracted_kwh",
            "delivered_kwh",
            "baseline_kw",
            "metered_kw",
            "delivered_kw",
            "ratio",
            "status",
            "note",
            "computed_at",
        ]


class DisputeInputSerializer(serializers.Serializer):
    comment = serializers.CharField()


class VerificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    model = DeliveryVerification
    serializer_class = VerificationSerializer
    filterset_fields = ["state"]

    def get_visible_queryset(self, actor):
        return selectors.verifications_get_visible(actor=actor)

    @extend_schema(request=DisputeInputSerializer, responses={201: dict})
    @action(detail=True, methods=["post"])
    def dispute(self, request, pk=None):
        data = DisputeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = services.dispute_open(
            actor=self.get_actor(), verification=self.get_object(), comment=data.validated_data["comment"]
        )
        return Response({"id": dispute.pk, "state": dispute.state}, status=status.HTTP_201_CREATED)


class StatementLineSerializer(serializers.Serializer):
    contract = serializers.CharField(allow_null=True)
    agreement = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=16, decimal_places=4)
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=4)
    amount_eur = serializers.DecimalField(max_digits=16, decimal_places=2)


class StatementSerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.legal_name")
    period = serializers.CharField(source="period.name")
    invoice = serializers.CharField(source="invoice.number", default=None, allow_null=True)
    gross_eur = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    lines = serializers.SerializerMethodField()

    class Meta:
        model = SettlementStatement
        fields = [
            "id",
            "period",
            "organisation",
            "kind",
            "currency",
            "total_eur",
            "vat_rate",
            "vat_eur",
            "gross_eur",
            "invoice",
            "lines",
            "created_at",
        ]

    @extend_schema_field(StatementLineSerializer(many=True))
    def get_lines(self, obj) -> list[dict]:
        return StatementLineSerializer(
            [
                {
                    "contract": line.contract.reference if line.contract_id else None,
                    "agreement": line.agreement_id,
                    "kind": line.kind,
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "amount_eur": line.amount_eur,
                }
                for line in obj.lines.all()
            ],
            many=True,
        ).data


class SettlementViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Your settlement statements; `/invoice/?type=pdf|csv` downloads the invoice."""

    model = SettlementStatement
    serializer_class = StatementSerializer

    def get_visible_queryset(self, actor):
        return (
            selectors.statements_get_visible(actor=actor)
            .select_related("invoice")
            .prefetch_related("lines__contract")
        )

    @extend_schema(
        parameters=[OpenApiParameter("type", str, enum=["pdf", "csv"])],
        responses={(200, "application/pdf"): bytes, (200, "text/csv"): str},
    )
    @action(detail=True)
    def invoice(self, request, pk=None):
        statement = self.get_object()
        if request.query_params.get("type", "pdf") not in ("pdf", "csv"):
            raise serializers.ValidationError({"type": ["Give pdf or csv."]})
        if request.query_params.get("type") == "csv":
            return HttpResponse(invoices.invoice_csv(statement), content_type="text/csv")
        return HttpResponse(invoices.invoice_pdf(statement), content_type="application/pdf")


# --- the FMO's settlement periods and dispute rulings ----------------------------------------------


class PeriodSerializer(serializers.ModelSerializer):
    class Meta:
        model = SettlementPeriod
        fields = [
            "id",
            "name",
            "start",
            "end",
            "state",
            "computed_at",
            "approved_at",
            "locked_at",
            "pending_contracts",
            "lock_override_reason",
        ]
        read_only_fields = [
            "state",
            "computed_at",
            "approved_at",
            "locked_at",
            "pending_contracts",
            "lock_override_reason",
        ]


class LockSerializer(serializers.Serializer):
    override_reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReverifySerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        help_text="Needed for an approved or locked period",
    )


class PeriodStepPreviewSerializer(serializers.Serializer):
    step = serializers.CharField()
    facts = serializers.SerializerMethodField()
    rows = serializers.ListField(child=serializers.DictField())
    refusals = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    reason_field = serializers.CharField(allow_null=True)

    def get_facts(self, preview) -> dict[str, str]:
        return {label: str(value) for label, value in preview["facts"]}


class PendingAdjustmentSerializer(serializers.Serializer):
    organisation = serializers.IntegerField()
    total_eur = serializers.DecimalField(max_digits=16, decimal_places=2)
    lines = StatementLineSerializer(many=True)


class PeriodViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Settlement periods (the FMO only): create, compute, approve, lock (with an override reason when the period
    is not over or holds unverified or disputed contracts), re-verify, and the pending adjustment to issue."""

    model = SettlementPeriod
    serializer_class = PeriodSerializer

    def get_visible_queryset(self, actor):
        return selectors.periods_get_operated(actor=actor)

    def _answer(self, period, code=status.HTTP_200_OK):
        return Response(PeriodSerializer(period).data, status=code)

    def create(self, request):
        data = PeriodSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        period = services.period_create(actor=self.get_actor(), **data.validated_data)
        return self._answer(period, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=PeriodSerializer)
    @action(detail=True, methods=["post"])
    def compute(self, request, pk=None):
        return self._answer(services.period_compute(actor=self.get_actor(), period=self.get_object()))

    @extend_schema(request=None, responses=PeriodSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._answer(services.period_approve(actor=self.get_actor(), period=self.get_object()))

    @extend_schema(request=LockSerializer, responses=PeriodSerializer)
    @action(detail=True, methods=["post"])
    def lock(self, request, pk=None):
        data = LockSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        period = services.period_lock(
            actor=self.get_actor(),
            period=self.get_object(),
            override_reason=data.validated_data["override_reason"],
        )
        return self._answer(period)

    @extend_schema(request=ReverifySerializer, responses={200: dict})
    @action(detail=True, methods=["post"])
    def reverify(self, request, pk=None):
        """Re-run verification of the period's contracts; an approved or locked period needs a reason."""
        data = ReverifySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changed = services.period_reverify(
            actor=self.get_actor(), period=self.get_object(), reason=data.validated_data["reason"]
        )
        return Response({"changed": changed})

    @extend_schema(responses=PeriodStepPreviewSerializer)
    @action(detail=True, methods=["get"], url_path=r"preview/(?P<step>compute|approve|lock|adjust|reverify)")
    def preview(self, request, pk=None, step=None):
        """What a step (compute, approve, lock, adjust, reverify) would do now; nothing is written."""
        preview = services.period_step_preview(actor=self.get_actor(), period=self.get_object(), step=step)
        return Response(PeriodStepPreviewSerializer(preview).data)

    @extend_schema(responses=PendingAdjustmentSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="pending-adjustment")
    def pending_adjustment(self, request, pk=None):
        pending = services.period_pending_adjustment(actor=self.get_actor(), period=self.get_object())
        return Response(PendingAdjustmentSerializer(selectors.adjustment_rows(pending), many=True).data)

    @extend_schema(request=None, responses=StatementSerializer(many=True))
    @action(detail=True, methods=["post"])
    def adjust(self, request, pk=None):
        statements = services.period_adjust(actor=self.get_actor(), period=self.get_object())
        return Response(StatementSerializer(statements, many=True).data, status=status.HTTP_201_CREATED)


class DisputeSerializer(serializers.ModelSerializer):
    contract = serializers.CharField(source="verification.contract.reference", read_only=True)

    class Meta:
        model = Dispute
        fields = [
            "id",
            "verification",
            "contract",
            "comment",
            "state",
            "resolution",
            "accepted_delivered_kwh",
            "created_at",
            "resolved_at",
        ]


class ResolveSerializer(serializers.Serializer):
    uphold = serializers.BooleanField()
    resolution = serializers.CharField()
    accepted_delivered_kwh = serializers.DecimalField(
        max_digits=14, decimal_places=3, min_value=0, required=False, allow_null=True
    )


class ReopenSerializer(serializers.Serializer):
    reason = serializers.CharField()


class DisputeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganisationScopedViewSet):
    """Disputes on verification results: the contract's parties see theirs; the FMO rules on them and may
    reopen a ruling (audited)."""

    model = Dispute
    serializer_class = DisputeSerializer
    filterset_fields = ["state"]

    def get_visible_queryset(self, actor):
        return selectors.disputes_get_visible(actor=actor)

    @extend_schema(request=ResolveSerializer, responses=DisputeSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        data = ResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = services.dispute_resolve(
            actor=self.get_actor(), dispute=self.get_object(), **data.validated_data
        )
        return Response(DisputeSerializer(dispute).data)

    @extend_schema(request=ReopenSerializer, responses=DisputeSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        data = ReopenSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = services.dispute_reopen(
            actor=self.get_actor(), dispute=self.get_object(), reason=data.validated_data["reason"]
        )
        return Response(DisputeSerializer(dispute).data)
