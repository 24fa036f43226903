"""Grid locations (DSO congestion zones), network models and power-flow runs, FlexAssets, portfolios."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.models import Organisation
from flexmarket.runs import LeasedRun


class GridLocation(models.Model):
    """A DSO-owned congestion zone: a WGS84 polygon stored as RFC 7946 GeoJSON, with a traffic light."""

    class VoltageLevel(models.TextChoices):
        LV = "LV", "Low voltage (≤1 kV)"
        MV = "MV", "Medium voltage (1–36 kV)"
        HV = "HV", "High voltage (>36 kV)"

    class Status(models.TextChoices):
        NORMAL = "normal", "Normal"
        WATCH = "watch", "Watch"
        CONGESTED = "congested", "Congested"

    class StatusSource(models.TextChoices):
        MANUAL = "manual", "Set by the DSO"
        POWER_FLOW = "power_flow", "Set by a power-flow run"

    dso = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="grid_locations")
    name = models.CharField(max_length=120)
    code = models.CharField(
        max_length=64, unique=True, help_text="e.g. the UFTP congestion point EAN (ean.871…)"
    )
    voltage_level = models.CharField(max_length=2, choices=VoltageLevel.choices, default=VoltageLevel.MV)
    geometry = models.JSONField(
        help_text="GeoJSON Polygon or MultiPolygon geometry, WGS84 lon/lat (RFC 7946)."
    )
    display_geometry = models.JSONField(
        null=True,
        blank=True,
        help_text="`geometry` simplified for maps (FLEXMARKET_ZONE_DISPLAY_MAX_VERTICES); empty: use geometry.",
    )
    # Bounding box of `geometry`, kept for fast prefiltering of point-in-polygon lookups.
    min_lon = models.FloatField(default=0)
    min_lat = models.FloatField(default=0)
    max_lon = models.FloatField(default=0)
    max_lat = models.FloatField(default=0)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NORMAL, db_index=True)
    status_source = models.CharField(max_length=12, choices=StatusSource.choices, default=StatusSource.MANUAL)
    status_reason = models.CharField(max_length=300, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dso", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def is_active(self) -> bool:
        return self.archived_at is None


class NetworkModel(models.Model):
    """A DSO's pandapower network (JSON), versioned: each upload is a new version."""

    dso = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="network_models")
    name = models.CharField(max_length=120)
    version = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=60, help_text="'upload' or the bundled example's name")
    network_json = models.TextField(help_text="pandapower.to_json() output")
    bus_count = models.PositiveIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dso", "name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["dso", "name", "version"], name="unique_network_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class NetworkModelLoad(LeasedRun):
    """A request to load a network model: pandapower parsing and zone mapping run on a worker, not in the request.

    A leased run (flexmarket/runs.py); on success `network_model` is the version it created.
    """

    dso = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="network_model_loads")
    name = models.CharField(max_length=120)
    example = models.CharField(max_length=60, blank=True, help_text="The bundled example to load, if any")
    network_json = models.TextField(
        blank=True, help_text="The uploaded pandapower JSON; emptied once the load has finished"
    )
    network_model = models.ForeignKey(
        NetworkModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Network load #{self.pk} ({self.name})"

    @property
    def is_finished(self) -> bool:
        return self.state in (LeasedRun.State.SUCCEEDED, LeasedRun.State.FAILED)


class ZoneBusMapping(models.Model):
    """Which buses of a network model lie in a grid location (used by power flow and network-aware clearing)."""

    network_model = models.ForeignKey(NetworkModel, on_delete=models.CASCADE, related_name="bus_mappings")
    grid_location = models.ForeignKey(GridLocation, on_delete=models.CASCADE, related_name="bus_mappings")
    bus_index = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network_model", "bus_index"], name="one_zone_per_bus"),
        ]


class PowerFlowRun(LeasedRun):
    """One power flow on a network model for a load scenario; results or a readable error.

    A leased run (flexmarket/runs.py): state, attempts, lease and error come from LeasedRun.
    """

    network_model = models.ForeignKey(NetworkModel, on_delete=models.CASCADE, related_name="power_flow_runs")
    scenario = models.CharField(max_length=40, default="base")
    load_scaling = models.FloatField(default=1.0)
    generation_scaling = models.FloatField(default=1.0)
    results = models.JSONField(
        null=True, blank=True, help_text="line loading %, bus voltage p.u., violations"
    )
    max_line_loading_percent = models.FloatField(null=True, blank=True)
    min_voltage_pu = models.FloatField(null=True, blank=True)
    max_voltage_pu = models.FloatField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Power flow #{self.pk} ({self.scenario})"


class FlexAsset(models.Model):
    """An ESP's flexible asset. Lands in the grid location containing it; the zone's DSO prequalifies it."""

    class AssetType(models.TextChoices):
        BATTERY = "battery", "Battery"
        EV_CHARGING = "ev_charging", "EV charging"
        HEAT_PUMP = "heat_pump", "Heat pump"
        PV = "pv", "PV"
        CHP = "chp", "CHP"
        INDUSTRIAL_LOAD = "industrial_load", "Industrial load"
        OTHER = "other", "Other"

    class Prequalification(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUSPENDED = "suspended", "Suspended"

    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="flex_assets")
    name = models.CharField(max_length=120)
    asset_type = models.CharField(max_length=20, choices=AssetType.choices)
    connection_ean = models.CharField(max_length=18, help_text="EAN-18 of the connection point")
    latitude = models.FloatField()
    longitude = models.FloatField()
    grid_location = models.ForeignKey(
        GridLocation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assets",
        help_text="The zone containing the asset; empty when outside every zone (it cannot trade then).",
    )
    brp = models.ForeignKey(
        Organisation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="balanced_assets",
        help_text="Balance responsible party of the connection",
    )
    max_up_kw = models.DecimalField(
        max_digits=12, decimal_places=3, validators=[MinValueValidator(Decimal("0"))]
    )
    max_down_kw = models.DecimalField(
        max_digits=12, decimal_places=3, validators=[MinValueValidator(Decimal("0"))]
    )
    energy_capacity_kwh = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    ramp_rate_kw_per_min = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    availability = models.JSONField(
        default=list,
        blank=True,
        help_text='Windows when the asset can be activated: [{"days": [0..6], "start": "HH:MM", "end": "HH:MM"}] local time',
    )
    prequalification = models.CharField(
        max_length=12, choices=Prequalification.choices, default=Prequalification.PENDING, db_index=True
    )
    prequalification_reason = models.TextField(blank=True)
    prequalified_at = models.DateTimeField(null=True, blank=True)
    prequalified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["owner", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(max_up_kw__gte=0), name="asset_max_up_non_negative"),
            models.CheckConstraint(
                condition=models.Q(max_down_kw__gte=0), name="asset_max_down_non_negative"
            ),
            # A connection point identifies one asset at a time; a change of owner archives the old one.
            models.UniqueConstraint(
                fields=["connection_ean"],
                condition=models.Q(archived_at__isnull=True),
                name="one_asset_per_connection",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def availability_text(self) -> str:
        """Windows as "mon-fri 07:00-22:00; sat 09:00-13:00" (empty list: always)."""
        names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        parts = []
        for window in self.availability:
            days = window["days"]
            contiguous = days == list(range(days[0], days[-1] + 1))
            label = (
                f"{names[days[0]]}-{names[days[-1]]}"
                if contiguous and len(days) > 1
                else ",".join(names[d] for d in days)
            )
            parts.append(f"{label} {window['start']}-{window['end']}")
        return "; ".join(parts) or "always"

    @property
    def can_trade(self) -> bool:
        return (
            self.prequalification == self.Prequalification.APPROVED
            and self.grid_location_id is not None
            and self.archived_at is None
        )


class PrequalificationCheck(models.Model):
    """One item of the DSO's prequalification checklist for an asset: ticked or not, by whom, when, with a note."""

    class Item(models.TextChoices):
        CONNECTION = "connection", "Connection point (EAN) verified against the connection register"
        METERING = "metering", "Metering adequate for M&V (15-minute interval data of the connection)"
        CAPACITY = "capacity", "Max up/down and direction plausible for the connection capacity"
        LOCATION = "location", "Located in the zone (the connection address matches the map point)"
        DISPATCH_TEST = "dispatch_test", "Communication and dispatch test passed"
        BRP_INFORMED = "brp_informed", "Balance responsible party of the connection informed"

    # Approval needs every item but the BRP notice, which the ESP may still be arranging (USEF: the BRP is
    # informed of flexibility activated on its connections, not asked to approve the asset).
    MANDATORY = (Item.CONNECTION, Item.METERING, Item.CAPACITY, Item.LOCATION, Item.DISPATCH_TEST)

    asset = models.ForeignKey(FlexAsset, on_delete=models.CASCADE, related_name="prequalification_checks")
    item = models.CharField(max_length=20, choices=Item.choices)
    checked = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asset", "item"]
        constraints = [models.UniqueConstraint(fields=["asset", "item"], name="one_check_per_asset_item")]

    def __str__(self) -> str:
        return f"{self.asset}: {self.get_item_display()}"

    @property
    def mandatory(self) -> bool:
        return self.item in self.MANDATORY


class Portfolio(models.Model):
    """Approved assets of one ESP in one grid location, offered as one (FLEXGRID: aggregated flexibility)."""

    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="portfolios")
    grid_location = models.ForeignKey(GridLocation, on_delete=models.PROTECT, related_name="portfolios")
    name = models.CharField(max_length=120)
    assets = models.ManyToManyField(FlexAsset, related_name="portfolios")
    created_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["owner", "name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_portfolio_name")]

    def __str__(self) -> str:
        return self.name


class AssetBusMapping(models.Model):
    """The bus of a network model an asset is connected to, set by the DSO (default: nearest bus in its zone)."""

    network_model = models.ForeignKey(NetworkModel, on_delete=models.CASCADE, related_name="asset_mappings")
    asset = models.ForeignKey(FlexAsset, on_delete=models.CASCADE, related_name="bus_mappings")
    bus_index = models.IntegerField()
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    set_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network_model", "asset"], name="one_bus_per_asset_and_model"),
        ]


class ForecastUpload(models.Model):
    """A DSO's own forecast for a delivery day: per bus or per zone and PTU, kW and kVAr (replaces profiles there).

    `values` is {"bus:<index>" | "zone:<id>": {"<ptu index>": [p_kw, q_kvar]}}.
    """

    network_model = models.ForeignKey(NetworkModel, on_delete=models.CASCADE, related_name="forecast_uploads")
    delivery_day = models.DateField()
    values = models.JSONField()
    row_count = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Forecast upload #{self.pk} ({self.delivery_day})"


class ForecastRun(LeasedRun):
    """A congestion forecast: a time-series AC power flow over every PTU of a delivery day (grid/timeseries.py).

    `results` holds per element arrays over the PTUs: {"line_loading_percent": [[...per PTU] per line],
    "trafo_loading_percent": ..., "bus_voltage_pu": ..., "line_index": [...], "trafo_index": [...],
    "bus_index": [...]}; `zone_states` is {"<zone id>": "0012..."} (one digit per PTU: 0 normal, 1 watch,
    2 congested).
    """

    network_model = models.ForeignKey(NetworkModel, on_delete=models.CASCADE, related_name="forecast_runs")
    delivery_day = models.DateField()
    load_scaling = models.FloatField(default=1.0)
    generation_scaling = models.FloatField(default=1.0)
    inputs = models.JSONField(default=dict, blank=True, help_text="Where the operating point came from")
    ptu_count = models.PositiveSmallIntegerField(null=True, blank=True)
    results = models.JSONField(null=True, blank=True)
    zone_states = models.JSONField(null=True, blank=True)
    max_line_loading_percent = models.FloatField(null=True, blank=True)
    min_voltage_pu = models.FloatField(null=True, blank=True)
    max_voltage_pu = models.FloatField(null=True, blank=True)
    congested_ptus = models.PositiveSmallIntegerField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True, help_text="Wall time of the batch power flow")
    needs = models.JSONField(
        null=True,
        blank=True,
        help_text='Flexibility needed at congested PTUs: {"zones": {zone id: {PTU index: kW, up positive}}, '
        '"unsolvable": [PTU], "linear_ok": [PTU]} (grid/needs.py)',
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Forecast #{self.pk} ({self.delivery_day})"
