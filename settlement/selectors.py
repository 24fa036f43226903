"""Reads for meter data, verifications, disputes, statements and accuracy, with visibility rules.

Readings and prognoses: the asset's ESP, the DSO of its zone, the FMO. Verifications: the contract's buyer and
seller, the FMO. Statements and invoices: their organisation and the FMO.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db.models import F, Q, QuerySet, Sum, Window
from django.http import Http404

from accounts.context import Actor
from accounts.models import Organisation
from settlement import meterdays
from settlement.models import (
    BaselineAccuracy,
    DeliveryVerification,
    Dispute,
    MeterDay,
    MeterUpload,
    SettlementPeriod,
    SettlementStatement,
)
from trading.models import Contract


def _operator(actor: Actor) -> bool:
    return actor.is_fmo and not actor.on_behalf


def meter_days_get_visible(*, actor: Actor) -> QuerySet[MeterDay]:
    """Current day rows of the readings the actor may see (the API expands them into readings)."""
    if actor.organisation is None:
        return MeterDay.objects.none()
    qs = MeterDay.objects.select_related("asset").filter(superseded_at__isnull=True)
    if _operator(actor):
        return qs
    return qs.filter(Q(asset__owner=actor.organisation) | Q(asset__grid_location__dso=actor.organisation))


def _current_days(asset_ids: list[int], start: datetime, end: datetime, source: str) -> QuerySet[MeterDay]:
    first, last = meterdays.days_spanning(start, end)
    return MeterDay.objects.filter(
        asset_id__in=asset_ids, source=source, superseded_at__isnull=True, day__gte=first, day__lte=last
    )


def readings_current(
    *, asset_ids: list[int], start: datetime, end: datetime, source: str = "esp"
) -> Iterator[tuple[int, datetime, int, int]]:
    """Current readings with a PTU start in [start, end) as (asset id, PTU start, watts, version of its day)."""
    if end <= start:
        return
    rows = _current_days(asset_ids, start, end, source).values_list("asset_id", "day", "watts", "version")
    for asset_id, day, blob, version in rows.iterator(chunk_size=2000):
        values = meterdays.unpack(blob)
        for index in np.flatnonzero(values != meterdays.MISSING).tolist():
            moment = meterdays.moment_of(day, index)
            if start <= moment < end:
                yield asset_id, moment, int(values[index]), version


def readings_series(
    *, asset_ids: list[int], start: datetime, end: datetime, source: str = "esp"
) -> dict[int, dict[datetime, float]]:
    """Current readings per asset and PTU start in [start, end)."""
    series: dict[int, dict[datetime, float]] = {asset_id: {} for asset_id in asset_ids}
    for asset_id, moment, watts, _version in readings_current(
        asset_ids=asset_ids, start=start, end=end, source=source
    ):
        series[asset_id][moment] = watts / 1000.0  # the correctly rounded double, as float(Decimal) gives
    return series


def readings_fingerprint(*, asset_ids: list[int], start: datetime, end: datetime) -> list:
    """(asset id, PTU start, version) of each current ESP reading in [start, end); a reading carries the version
    of its day row, so any correction of the day changes the fingerprint of every reading of that day."""
    return sorted(
        (asset_id, moment, version)
        for asset_id, moment, _watts, version in readings_current(asset_ids=asset_ids, start=start, end=end)
    )


def readings_expand(days: list[MeterDay]) -> list[dict]:
    """Day rows as per-reading dicts (asset, ptu_start, kw as a Decimal with three places, source, version,
    created_at), in the rows' order and by PTU within a row."""
    readings = []
    for row in days:
        values = meterdays.unpack(row.watts)
        for index in np.flatnonzero(values != meterdays.MISSING).tolist():
            readings.append(
                {
                    "asset": row.asset,
                    "ptu_start": meterdays.moment_of(row.day, index),
                    "kw": meterdays.kw_of(values[index]),
                    "source": row.source,
                    "version": row.version,
                    "created_at": row.created_at,
                }
            )
    return readings


def uploads_get_visible(*, actor: Actor) -> QuerySet[MeterUpload]:
    if actor.organisation is None:
        return MeterUpload.objects.none()
    return (
        MeterUpload.objects.all()
        if _operator(actor)
        else MeterUpload.objects.filter(owner=actor.organisation)
    )


def verifications_get_visible(*, actor: Actor) -> QuerySet[DeliveryVerification]:
    if actor.organisation is None:
        return DeliveryVerification.objects.none()
    qs = DeliveryVerification.objects.select_related(
        "contract", "contract__buyer", "contract__seller", "contract__grid_location", "contract__product"
    )
    if _operator(actor):
        return qs
    return qs.filter(Q(contract__buyer=actor.organisation) | Q(contract__seller=actor.organisation))


def verification_get_visible(*, actor: Actor, pk) -> DeliveryVerification:
    verification = verifications_get_visible(actor=actor).filter(pk=pk).first()
    if verification is None:
        raise Http404
    return verification


def disputes_open() -> QuerySet[Dispute]:
    return Dispute.objects.select_related("verification__contract").filter(state=Dispute.State.OPEN)


def periods_get_visible(*, actor: Actor) -> QuerySet[SettlementPeriod]:
    return (
        SettlementPeriod.objects.all() if actor.organisation is not None else SettlementPeriod.objects.none()
    )


def periods_get_operated(*, actor: Actor) -> QuerySet[SettlementPeriod]:
    """Periods as the FMO runs them (pending adjustments, lock blockers): nobody else sees this view."""
    return SettlementPeriod.objects.all() if _operator(actor) else SettlementPeriod.objects.none()


def adjustment_rows(pending: dict) -> list[dict]:
    """A pending adjustment ({organisation id: [amounts.Line]}) as rows for pages and the API."""
    references = dict(
        Contract.objects.filter(
            pk__in={line.contract for lines in pending.values() for line in lines if line.contract}
        ).values_list("pk", "reference")
    )
    names = dict(Organisation.objects.filter(pk__in=pending).values_list("pk", "legal_name"))
    return [
        {
            "organisation": organisation_id,
            "organisation_name": names.get(organisation_id, ""),
            "total_eur": sum((line.amount for line in lines), Decimal(0)),
            "lines": [
                {
                    "contract": references.get(line.contract),
                    "agreement": line.agreement,
                    "kind": line.kind,
                    "description": f"Correction: {line.kind}",
                    "quantity": line.quantity.quantize(Decimal("0.0001")),
                    "unit_price": line.unit_price.quantize(Decimal("0.0001")),
                    "amount_eur": line.amount,
                }
                for line in lines
            ],
        }
        for organisation_id, lines in sorted(pending.items())
    ]


def disputes_get_visible(*, actor: Actor) -> QuerySet[Dispute]:
    """The FMO sees every dispute; a contract's buyer and seller see the disputes on it."""
    if actor.organisation is None:
        return Dispute.objects.none()
    qs = Dispute.objects.select_related("verification__contract")
    if _operator(actor):
        return qs
    return qs.filter(
        Q(verification__contract__buyer=actor.organisation)
        | Q(verification__contract__seller=actor.organisation)
    )


def disputes_resolved() -> QuerySet[Dispute]:
    return (
        Dispute.objects.select_related("verification__contract")
        .exclude(state=Dispute.State.OPEN)
        .order_by("-resolved_at")
    )


def period_get(*, actor: Actor, pk) -> SettlementPeriod:
    period = periods_get_visible(actor=actor).filter(pk=pk).first()
    if period is None:
        raise Http404
    return period


def statements_get_visible(*, actor: Actor) -> QuerySet[SettlementStatement]:
    if actor.organisation is None:
        return SettlementStatement.objects.none()
    qs = SettlementStatement.objects.select_related("period", "organisation").prefetch_related("lines")
    return qs if _operator(actor) else qs.filter(organisation=actor.organisation)


def statement_organisations(*, actor: Actor) -> QuerySet[Organisation] | None:
    """The organisations the statement list may filter by: every one with a statement for the FMO; None for
    everyone else (they see only their own, so there is nothing to choose)."""
    if not _operator(actor):
        return None
    return Organisation.objects.filter(pk__in=SettlementStatement.objects.values("organisation")).order_by(
        "legal_name"
    )


def statement_totals_per_period(*, actor: Actor) -> list[tuple[str, Decimal]]:
    """The actor's own net settlement per period (oldest first), summed in the database, for the money chart."""
    if actor.organisation is None:
        return []
    rows = (
        SettlementStatement.objects.filter(organisation=actor.organisation)
        .values("period__name", "period__start")
        .annotate(total=Sum("total_eur"))
        .order_by("period__start", "period__name")
    )
    return [(row["period__name"], row["total"]) for row in rows]


def statement_get_visible(*, actor: Actor, pk) -> SettlementStatement:
    statement = statements_get_visible(actor=actor).filter(pk=pk).first()
    if statement is None:
        raise Http404
    return statement


def accuracy_get_visible(*, actor: Actor) -> QuerySet[BaselineAccuracy]:
    if actor.organisation is None:
        return BaselineAccuracy.objects.none()
    qs = BaselineAccuracy.objects.select_related("asset", "asset__grid_location")
    if _operator(actor):
        return qs
    return qs.filter(Q(asset__owner=actor.organisation) | Q(asset__grid_location__dso=actor.organisation))


def contract_get_any(*, pk):
    """A contract by id, for system tasks."""
    from trading.models import Contract

    return Contract.objects.get(pk=pk)


def prognoses_get_visible(*, actor: Actor):
    from settlement.models import Prognosis

    if actor.organisation is None:
        return Prognosis.objects.none()
    return (
        Prognosis.objects.select_related("asset", "portfolio")
        .filter(owner=actor.organisation)
        .order_by("-delivery_day")
    )


def prognosis_values_get_owned(*, actor: Actor, asset, delivery_day) -> list[float] | None:
    """The kW per PTU of the actor's current prognosis for the asset and day, or None."""
    return (
        prognoses_get_visible(actor=actor)
        .filter(asset=asset, delivery_day=delivery_day)
        .values_list("values_kw", flat=True)
        .first()
    )


# --- temperatures -----------------------------------------------------------------------------------

TEMPERATURE_REACH = timedelta(hours=1)  # a value covers the PTUs that start within an hour of it


def temperature_zones_get_writable(*, actor: Actor) -> QuerySet:
    """Zones whose temperatures the actor may upload and see: a DSO its own, the FMO (not on behalf) all."""
    from accounts.models import Role
    from grid.models import GridLocation

    if actor.organisation is None:
        return GridLocation.objects.none()
    qs = GridLocation.objects.filter(archived_at__isnull=True).order_by("code")
    if _operator(actor):
        return qs
    if not actor.has_role(Role.DSO):
        return GridLocation.objects.none()
    return qs.filter(dso=actor.organisation)


def temperatures_get_visible(*, actor: Actor) -> QuerySet:
    from settlement.models import ZoneTemperature

    return ZoneTemperature.objects.select_related("grid_location").filter(
        grid_location__in=temperature_zones_get_writable(actor=actor)
    )


def temperature_coverage_get_visible(*, actor: Actor) -> list[dict]:
    """Per writable zone: how many values, the first and the last time."""
    from django.db.models import Count, Max, Min

    rows = (
        temperatures_get_visible(actor=actor)
        .values("grid_location__code", "grid_location__name")
        .annotate(count=Count("pk"), first=Min("start"), last=Max("start"))
        .order_by("grid_location__code")
    )
    return list(rows)


def temperatures_series(*, grid_location_id: int, starts: list[datetime]) -> dict[datetime, float]:
    """The temperature of each PTU start: the latest value at or before it that started less than an hour
    before it (an hourly series covers its four PTUs); PTUs without one are left out."""
    from settlement.models import ZoneTemperature

    if not starts:
        return {}
    rows = list(
        ZoneTemperature.objects.filter(
            grid_location_id=grid_location_id,
            start__gt=min(starts) - TEMPERATURE_REACH,
            start__lte=max(starts),
        )
        .order_by("start")
        .values_list("start", "celsius")
    )
    series, index, latest = {}, 0, None
    for moment in sorted(starts):
        while index < len(rows) and rows[index][0] <= moment:
            latest = rows[index]
            index += 1
        if latest is not None and moment - latest[0] < TEMPERATURE_REACH:
            series[moment] = float(latest[1])
    return series


def temperatures_fingerprint(*, grid_location_id: int, start: datetime, end: datetime) -> list:
    from settlement.models import ZoneTemperature

    return list(
        ZoneTemperature.objects.filter(
            grid_location_id=grid_location_id, start__gt=start - TEMPERATURE_REACH, start__lt=end
        )
        .order_by("start")
        .values_list("start", "celsius")
    )


class ReadingsOfDays(Sequence):
    """The readings of a queryset of day rows as a sliceable sequence, ordered by asset, source and PTU start, so
    page-number pagination pages readings rather than days: the length sums the rows' reading counts and a slice
    reads only the day rows it overlaps (a running sum over the rows, in the database)."""

    ORDER = ("asset_id", "source", "day")

    def __init__(self, days: QuerySet[MeterDay]):
        self.days = days.order_by(*self.ORDER)
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            self._count = self.days.aggregate(n=Sum("readings"))["n"] or 0
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item):
        if not isinstance(item, slice) or item.step not in (None, 1):
            raise TypeError("Readings are read in slices.")
        start, stop, _ = item.indices(self.count())
        if stop <= start:
            return []
        rows = list(
            self.days.annotate(through=Window(Sum("readings"), order_by=[F(f) for f in self.ORDER]))
            .annotate(before=F("through") - F("readings"))
            .filter(through__gt=start, before__lt=stop)
        )
        if not rows:
            return []
        skip = start - rows[0].before
        return readings_expand(rows)[skip : skip + stop - start]
