"""REST endpoints: meter readings (bulk), D-prognoses, verifications, disputes, settlement statements and invoices."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from flexmarket.api.viewsets import OrganisationScopedViewSet
from grid.selectors import assets_get_owned, portfolios_get_visible
from settlement import invoices, selectors, services
from settlement.models import DeliveryVerification, MeterReading, Prognosis, SettlementStatement


class ReadingSerializer(serializers.ModelSerializer):
    asset_ean = serializers.CharField(source="asset.connection_ean")

    class Meta:
        model = MeterReading
        fields = ["id", "asset_ean", "ptu_start", "kw", "source", "version", "created_at"]


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
    """Current readings you may see; POST a bulk list (all or nothing, idempotent)."""

    model = MeterReading
    serializer_class = ReadingSerializer
    enqueue_actions = ("create",)  # changed readings queue verifications
    filterset_fields = ["asset", "source"]

    def get_visible_queryset(self, actor):
        return selectors.readings_get_visible(actor=actor).order_by("asset_id", "ptu_start")

    @extend_schema(request=ReadingsBulkSerializer, responses={201: UploadResultSerializer})
    def create(self, request):
        data = ReadingsBulkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = services.readings_submit(actor=self.get_actor(), readings=data.validated_data["readings"])
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


class StatementSerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.legal_name")
    period = serializers.CharField(source="period.name")
    invoice = serializers.CharField(source="invoice.number", default=None, allow_null=True)
    lines = serializers.SerializerMethodField()

    class Meta:
        model = SettlementStatement
        fields = ["id", "period", "organisation", "kind", "total_eur", "invoice", "lines", "created_at"]

    def get_lines(self, obj) -> list[dict]:
        return [
            {
                "contract": line.contract.reference if line.contract_id else None,
                "kind": line.kind,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "amount_eur": str(line.amount_eur),
            }
            for line in obj.lines.all()
        ]


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
