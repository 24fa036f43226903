"""Meter data, D-prognoses, baselines, delivery verification, disputes, settlement periods, statements, invoices."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Organisation
from flexmarket.runs import LeasedRun, RunState
from grid.models import FlexAsset, GridLocation, Portfolio
from trading.models import AvailabilityAgreement, Contract


class MeterUpload(models.Model):
    """One uploaded file (or API batch) of readings; the same file twice is recognised by its hash."""

    class State(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="meter_uploads")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    filename = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=10, choices=State.choices)
    row_count = models.PositiveIntegerField(default=0)
    changed_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


class MeterDay(models.Model):
    """The readings of one asset from one source over one UTC day: 96 PTU values in one packed row.

    `watts` holds 96 little-endian int64 values (average W over each PTU, i.e. kW with three decimals, exactly;
    `settlement.meterdays.MISSING` where there is no reading). A correction writes a new version of the whole day
    and keeps the previous one with `superseded_at` set, so the history of what was known when is kept.
    """

    class Source(models.TextChoices):
        ESP = "esp", "ESP (sub-meter)"
        DSO = "dso", "DSO (connection point)"

    # No index of their own: the asset is the first column of both unique indexes below, and readings are never
    # looked up by upload (PROTECT makes deleting an upload or asset scan, which never happens in practice).
    asset = models.ForeignKey(FlexAsset, on_delete=models.PROTECT, related_name="meter_days", db_index=False)
    source = models.CharField(max_length=4, choices=Source.choices, default=Source.ESP)
    day = models.DateField(help_text="UTC day (always 96 PTUs)")
    watts = models.BinaryField(help_text="96 little-endian int64 watts; MISSING where no reading")
    readings = models.PositiveSmallIntegerField(help_text="How many of the 96 PTUs hold a reading")
    version = models.PositiveIntegerField(default=1)
    upload = models.ForeignKey(
        MeterUpload,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="meter_days",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asset", "source", "day", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "source", "day"],
                condition=models.Q(superseded_at__isnull=True),
                name="one_current_meter_day",
            ),
            # Also the index of the history: every version of an asset's day.
            models.UniqueConstraint(
                fields=["asset", "source", "day", "version"], name="one_meter_day_version"
            ),
        ]


class Prognosis(models.Model):
    """A D-prognosis: the ESP's nominated baseline for an asset or portfolio and delivery day (frozen at gate closure)."""

    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="prognoses")
    asset = models.ForeignKey(
        FlexAsset, on_delete=models.PROTECT, null=True, blank=True, related_name="prognoses"
    )
    portfolio = models.ForeignKey(
        Portfolio, on_delete=models.PROTECT, null=True, blank=True, related_name="prognoses"
    )
    delivery_day = models.DateField()
    ptu_start = models.DateTimeField()
    values_kw = models.JSONField()
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    submitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "prognoses"
        ordering = ["-delivery_day"]
        constraints = [
            models.UniqueConstraint(
                fields=["asset", "delivery_day"],
                condition=models.Q(asset__isnull=False),
                name="one_prognosis_per_asset_day",
            ),
            models.UniqueConstraint(
                fields=["portfolio", "delivery_day"],
                condition=models.Q(portfolio__isnull=False),
                name="one_prognosis_per_portfolio_day",
            ),
        ]


class DeliveryVerification(models.Model):
    """Per contract: baseline, metered, delivered, contracted, ratio and status per PTU, and totals."""

    class State(models.TextChoices):
        VERIFIED = "verified", "Verified"
        AWAITING_DATA = "awaiting_data", "Awaiting data"
        DISPUTED = "disputed", "Disputed"

    contract = models.OneToOneField(Contract, on_delete=models.PROTECT, related_name="verification")
    state = models.CharField(max_length=14, choices=State.choices, db_index=True)
    method = models.CharField(max_length=30)
    params = models.JSONField(default=dict)
    days_used = models.JSONField(default=list)
    baseline_kw = models.JSONField()
    metered_kw = models.JSONField()
    delivered_kw = models.JSONField()
    ratio = models.JSONField()
    status = models.JSONField(help_text="per PTU: delivered, partial, failed, awaiting_data, not_contracted")
    contracted_kwh = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal("0"))
    delivered_kwh = models.DecimalField(
        max_digits=14, decimal_places=3, null=True, blank=True, help_text="Empty until every input is there"
    )
    note = models.CharField(max_length=300, blank=True)
    inputs_hash = models.CharField(max_length=64)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-computed_at"]


class VerificationRun(LeasedRun):
    """One (re)computation of a contract's delivery verification, queued after new meter data or by the safety net.

    A leased run (flexmarket/runs.py). At most one run per contract waits in `pending`: new data arriving before
    it starts joins it; data arriving while it runs queues the next one.
    """

    class Reason(models.TextChoices):
        METER_DATA = "meter_data", "New meter data"
        SAFETY_NET = "safety_net", "Safety net (missing or awaiting data)"

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="verification_runs")
    reason = models.CharField(max_length=12, choices=Reason.choices)
    outcome = models.CharField(
        max_length=14,
        blank=True,
        help_text="The verification's state after this run (verified, awaiting data)",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract"],
                condition=models.Q(state=RunState.PENDING),
                name="one_pending_verification_run_per_contract",
            )
        ]

    def __str__(self) -> str:
        return f"Verification run #{self.pk}"


class Dispute(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        UPHELD = "upheld", "Upheld (the result is corrected)"
        REJECTED = "rejected", "Rejected"

    verification = models.ForeignKey(DeliveryVerification, on_delete=models.PROTECT, related_name="disputes")
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    comment = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    resolution = models.TextField(blank=True)
    accepted_delivered_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


class BaselineAccuracy(models.Model):
    """How well each method predicts an asset's load on days without activation."""

    asset = models.ForeignKey(FlexAsset, on_delete=models.CASCADE, related_name="baseline_accuracy")
    method = models.CharField(max_length=30)
    bias = models.FloatField(null=True)
    nmae = models.FloatField(null=True)
    samples = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "baseline accuracy score"
        constraints = [models.UniqueConstraint(fields=["asset", "method"], name="one_score_per_asset_method")]


class ZoneTemperature(models.Model):
    """Outdoor temperature (°C) of a grid location from `start` (aware UTC, on a PTU boundary), uploaded by the
    zone's DSO or the FMO; the temperature baseline reads it. A PTU takes the latest value that started at most
    an hour before it, so hourly and per-PTU series both work."""

    grid_location = models.ForeignKey(GridLocation, on_delete=models.CASCADE, related_name="temperatures")
    start = models.DateTimeField()
    celsius = models.DecimalField(max_digits=5, decimal_places=2)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["grid_location", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["grid_location", "start"], name="one_temperature_per_zone_and_time"
            ),
            models.CheckConstraint(
                condition=models.Q(celsius__gte=-90) & models.Q(celsius__lte=70), name="temperature_on_earth"
            ),
        ]


class SettlementPeriod(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        COMPUTED = "computed", "Computed"
        APPROVED = "approved", "Approved"
        LOCKED = "locked", "Locked"

    name = models.CharField(max_length=60, unique=True)
    start = models.DateField()
    end = models.DateField(help_text="Inclusive last delivery day")
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    computed_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    pending_contracts = models.PositiveIntegerField(
        default=0, help_text="Contracts not yet verified when computed"
    )
    lock_override_reason = models.TextField(
        blank=True, help_text="Why the FMO locked the period before it was over or fully verified"
    )

    class Meta:
        ordering = ["-start"]

    def __str__(self) -> str:
        return self.name


class SettlementStatement(models.Model):
    """What one organisation receives (+) or pays (−) for a period; adjustments correct locked periods."""

    class Kind(models.TextChoices):
        REGULAR = "regular", "Regular"
        ADJUSTMENT = "adjustment", "Adjustment"

    period = models.ForeignKey(SettlementPeriod, on_delete=models.PROTECT, related_name="statements")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="statements")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REGULAR)
    currency = models.CharField(max_length=3, default="EUR")
    total_eur = models.DecimalField(
        max_digits=16, decimal_places=2, default=Decimal("0"), help_text="Net: the sum of the lines"
    )
    vat_rate = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0"))
    vat_eur = models.DecimalField(
        max_digits=16, decimal_places=2, default=Decimal("0"), help_text="Net × VAT rate, rounded once"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["period", "organisation", "created_at"]

    @property
    def gross_eur(self) -> Decimal:
        return self.total_eur + self.vat_eur

    @property
    def vat_percent(self) -> Decimal:
        return (self.vat_rate * 100).normalize()


class StatementLine(models.Model):
    class Kind(models.TextChoices):
        AVAILABILITY = "availability", "Availability payment"
        ACTIVATION = "activation", "Activation payment"
        PENALTY = "penalty", "Under-delivery penalty"
        REACTIVE = "reactive", "Reactive power payment (as cleared)"
        FEE = "fee", "Platform fee"

    statement = models.ForeignKey(SettlementStatement, on_delete=models.CASCADE, related_name="lines")
    contract = models.ForeignKey(
        Contract, on_delete=models.PROTECT, null=True, blank=True, related_name="statement_lines"
    )
    agreement = models.ForeignKey(
        AvailabilityAgreement,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="statement_lines",
    )
    kind = models.CharField(max_length=14, choices=Kind.choices)
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(
        max_digits=16, decimal_places=4, help_text="MWh (or MW·h for availability)"
    )
    unit_price = models.DecimalField(max_digits=14, decimal_places=4)
    amount_eur = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        ordering = ["statement", "kind", "pk"]


class Invoice(models.Model):
    statement = models.OneToOneField(SettlementStatement, on_delete=models.PROTECT, related_name="invoice")
    number = models.CharField(max_length=30, unique=True)
    issued_at = models.DateTimeField(default=timezone.now)


class InvoiceSequence(models.Model):
    """Gapless invoice numbers per year (row-locked when a number is taken)."""

    year = models.PositiveIntegerField(unique=True)
    last = models.PositiveIntegerField(default=0)
