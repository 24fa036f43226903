"""D-prognoses (nominated baselines), frozen at gate closure; by form, chart editor, API and CSV.

Every way in ends in `prognosis_submit`, which decides what a valid prognosis is. The CSV comes in two layouts:
one row per asset and day (`asset_ean,delivery_day,values_kw`), or the downloadable template with one row per PTU
labelled in the market's local time (92, 96 or 100 rows).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.context import Actor
from accounts.services import audit_record
from flexmarket import localtime, validation
from flexmarket import ptu as ptus
from flexmarket.csvio import CsvReader, ImportErrors
from flexmarket.errors import DomainError
from grid.models import FlexAsset, Portfolio
from settlement.errors import SettlementErrorCode as Code
from settlement.models import (
    Prognosis,
)
from trading.models import MarketSession

PROGNOSIS_CSV_COLUMNS = ["asset_ean", "delivery_day", "values_kw"]
PROGNOSIS_TEMPLATE_COLUMNS = ["asset_ean", "delivery_day", "ptu", "local_start", "utc_start", "kw"]
PROGNOSIS_TEMPLATE_REQUIRED = ["asset_ean", "delivery_day", "ptu", "kw"]
BAD_PTUS_NAMED = 5


def ptu_labels(delivery_day: date, time_zone: str) -> list[tuple[str, str]]:
    """(UTC start in ISO 8601, local label such as '02:15 CEST') of every PTU of the delivery day."""
    return localtime.ptu_choices(*ptus.day_bounds_utc(delivery_day, time_zone), ZoneInfo(time_zone))


def kw_value(value) -> float:
    """A prognosis value in kW: a finite number within ±FLEXMARKET_ASSET_MAX_KW, else ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"'{str(value)[:20]}' is not a number (kW)")
    ceiling = float(settings.FLEXMARKET_ASSET_MAX_KW)
    if not math.isfinite(number) or abs(number) > ceiling:
        raise ValueError(f"{str(value)[:20]} is outside ±{ceiling:,.0f} kW")
    return number


# --- D-prognosis ------------------------------------------------------------------------------------


@transaction.atomic
def prognosis_submit(
    *,
    actor: Actor,
    delivery_day: date,
    values_kw: list,
    asset: FlexAsset | None = None,
    portfolio: Portfolio | None = None,
    time_zone: str = "Europe/Amsterdam",
    now: datetime | None = None,
) -> Prognosis:
    """Nominate a baseline for a delivery day; frozen once the first gate closure of that day has passed."""
    now = now or timezone.now()
    backing = asset or portfolio
    if backing is None or backing.owner_id != actor.organisation.pk:
        raise DomainError(Code.ROLE, "Submit prognoses for your own asset or portfolio.", field="asset")
    validation.check_date(delivery_day, field="delivery_day", code=Code.INVALID_PROGNOSIS)
    n = ptus.ptu_count(delivery_day, time_zone)
    if not isinstance(values_kw, list | tuple) or len(values_kw) != n:
        raise DomainError(
            Code.INVALID_PROGNOSIS, f"{delivery_day} has {n} PTUs: give {n} kW values.", field="values_kw"
        )
    values, bad = [], []
    for index, value in enumerate(values_kw):
        try:
            values.append(kw_value(value))
        except ValueError as problem:
            bad.append((index, str(problem)))
    if bad:
        labels = ptu_labels(delivery_day, time_zone)
        named = "; ".join(f"PTU {i + 1} ({labels[i][1]}): {problem}" for i, problem in bad[:BAD_PTUS_NAMED])
        more = f"; and {len(bad) - BAD_PTUS_NAMED} more" if len(bad) > BAD_PTUS_NAMED else ""
        ceiling = float(settings.FLEXMARKET_ASSET_MAX_KW)
        raise DomainError(
            Code.INVALID_PROGNOSIS,
            f"Values must be numbers between ±{ceiling:,.0f} kW. {named}{more}.",
            field="values_kw",
            extra={"ptus": [i + 1 for i, _ in bad]},
        )
    first_gate = (
        MarketSession.objects.filter(delivery_day=delivery_day)
        .order_by("gate_closure")
        .values_list("gate_closure", flat=True)
        .first()
    )
    if first_gate is not None and first_gate <= now:
        local = first_gate.astimezone(ZoneInfo(time_zone))
        raise DomainError(
            Code.PROGNOSIS_FROZEN,
            f"Prognoses for {delivery_day} froze at gate closure ({local:%Y-%m-%d %H:%M %Z}).",
            field="delivery_day",
        )
    start, _ = ptus.day_bounds_utc(delivery_day, time_zone)
    lookup = {"asset": asset} if asset else {"portfolio": portfolio}
    prognosis, created = Prognosis.objects.update_or_create(
        delivery_day=delivery_day,
        **lookup,
        defaults={
            "owner": actor.organisation,
            "ptu_start": start,
            "values_kw": values,
            "submitted_by": actor.user,
            "submitted_at": now,
        },
    )
    audit_record(
        actor=actor,
        action="prognosis.submit" if created else "prognosis.replace",
        target=prognosis,
        after={"day": str(delivery_day)},
    )
    return prognosis


def prognosis_template_csv(
    *, actor: Actor, asset: FlexAsset, delivery_day: date, time_zone: str = "Europe/Amsterdam"
) -> str:
    """The CSV template of one asset and delivery day: one row per PTU with its local and UTC start, and the kW
    of the current prognosis (empty when there is none) to fill in and upload."""
    if asset.owner_id != actor.organisation.pk:
        raise DomainError(Code.ROLE, "Templates are for your own assets.", field="asset")
    validation.check_date(delivery_day, field="delivery_day", code=Code.INVALID_PROGNOSIS)
    current = (
        Prognosis.objects.filter(asset=asset, delivery_day=delivery_day)
        .values_list("values_kw", flat=True)
        .first()
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PROGNOSIS_TEMPLATE_COLUMNS)
    for index, (utc_start, label) in enumerate(ptu_labels(delivery_day, time_zone)):
        kw = "" if current is None or index >= len(current) else f"{current[index]:g}"
        writer.writerow([asset.connection_ean, delivery_day.isoformat(), index + 1, label, utc_start, kw])
    return out.getvalue()


def prognoses_import_csv(
    *, actor: Actor, file, time_zone: str = "Europe/Amsterdam", progress=None
) -> list[Prognosis]:
    """CSV `asset_ean,delivery_day,values_kw` (values separated by spaces or semicolons), or the template with one
    row per PTU (`asset_ean,delivery_day,ptu,kw`, see prognosis_template_csv); all or nothing."""
    errors = ImportErrors(Code.INVALID_PROGNOSIS)
    reader = CsvReader(
        file,
        code=Code.INVALID_FILE,
        required=["asset_ean", "delivery_day"],
        errors=errors,
        header_hint=f"{','.join(PROGNOSIS_CSV_COLUMNS)} (or the template: {','.join(PROGNOSIS_TEMPLATE_COLUMNS)})",
    )
    assets = {a.connection_ean: a for a in FlexAsset.objects.filter(owner=actor.organisation)}
    if not reader.has_columns("values_kw"):
        reader.require(PROGNOSIS_TEMPLATE_REQUIRED)
        return [_import_template(actor=actor, reader=reader, assets=assets, time_zone=time_zone)]
    reader.require(PROGNOSIS_CSV_COLUMNS)
    created = []
    with transaction.atomic():
        for number, row in reader:
            asset = assets.get((row.get("asset_ean") or "").strip())
            try:
                if asset is None:
                    raise DomainError(
                        Code.INVALID_PROGNOSIS, "Unknown asset, or not yours.", field="asset_ean"
                    )
                day = validation.parse_date(
                    row.get("delivery_day") or "", field="delivery_day", code=Code.INVALID_PROGNOSIS
                )
                values = (row.get("values_kw") or "").replace(";", " ").split()
                with transaction.atomic():
                    created.append(
                        prognosis_submit(
                            actor=actor, asset=asset, delivery_day=day, values_kw=values, time_zone=time_zone
                        )
                    )
            except DomainError as error:
                errors.add_error(number, error)
            if progress is not None:
                progress(reader.rows_read, errors.count)
        if errors:
            transaction.set_rollback(True)
    errors.raise_if_any()
    return created


def _template_row(row: dict, assets: dict, first: dict, time_zone: str) -> tuple[int, float]:
    """(PTU index, kW) of one template row; the first row fixes the asset and the day of the file."""
    asset = assets.get((row.get("asset_ean") or "").strip())
    if asset is None:
        raise DomainError(Code.INVALID_PROGNOSIS, "Unknown asset, or not yours.", field="asset_ean")
    day = validation.parse_date(
        row.get("delivery_day") or "", field="delivery_day", code=Code.INVALID_PROGNOSIS
    )
    if not first:
        first.update(asset=asset, day=day, labels=ptu_labels(day, time_zone), values={})
    if asset != first["asset"]:
        raise DomainError(
            Code.INVALID_PROGNOSIS,
            f"One asset per file: the first row is {first['asset'].connection_ean}.",
            field="asset_ean",
        )
    if day != first["day"]:
        raise DomainError(
            Code.INVALID_PROGNOSIS,
            f"One delivery day per file: the first row is {first['day']}.",
            field="delivery_day",
        )
    labels = first["labels"]
    text = (row.get("ptu") or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= len(labels):
        raise DomainError(
            Code.INVALID_PROGNOSIS, f"PTU must be a number from 1 to {len(labels)} on {day}.", field="ptu"
        )
    index = int(text) - 1
    if index in first["values"]:
        raise DomainError(Code.INVALID_PROGNOSIS, f"PTU {index + 1} appears twice.", field="ptu")
    utc_start, label = labels[index]
    written = (row.get("utc_start") or "").strip()
    if written:
        try:
            same = datetime.fromisoformat(written) == datetime.fromisoformat(utc_start)
        except (ValueError, TypeError):
            same = False
        if not same:
            raise DomainError(
                Code.INVALID_PROGNOSIS,
                f"PTU {index + 1} starts at {utc_start} ({label}), not {written[:40]}; were rows moved?",
                field="utc_start",
            )
    kw = (row.get("kw") or "").strip()
    if not kw:
        raise DomainError(Code.INVALID_PROGNOSIS, f"PTU {index + 1} ({label}): give a kW value.", field="kw")
    try:
        return index, kw_value(kw)
    except ValueError as problem:
        raise DomainError(Code.INVALID_PROGNOSIS, f"PTU {index + 1} ({label}): {problem}.", field="kw")


def _import_template(*, actor: Actor, reader: CsvReader, assets: dict, time_zone: str) -> Prognosis:
    """One prognosis from the per-PTU template: every row checked, every PTU present, then prognosis_submit."""
    errors = reader.errors
    first: dict = {}
    for number, row in reader:
        try:
            index, kw = _template_row(row, assets, first, time_zone)
            first["values"][index] = kw
        except DomainError as error:
            errors.add_error(number, error)
    if not first:
        errors.raise_if_any()
        raise DomainError(Code.INVALID_FILE, "The file has no rows.", field="file")
    if not errors:
        missing = [str(i + 1) for i in range(len(first["labels"])) if i not in first["values"]]
        if missing:
            shown = ", ".join(missing[:20]) + (" …" if len(missing) > 20 else "")
            errors.add(None, "ptu", f"{len(missing)} PTU(s) of {first['day']} have no row: {shown}.")
    errors.raise_if_any()
    values = [first["values"][i] for i in range(len(first["labels"]))]
    return prognosis_submit(
        actor=actor, asset=first["asset"], delivery_day=first["day"], values_kw=values, time_zone=time_zone
    )


def prognoses_import_job(*, actor: Actor, file, filename: str = "", progress=None) -> dict:
    """Background run of prognoses_import_csv (flexmarket.imports)."""
    return {"count": len(prognoses_import_csv(actor=actor, file=file, progress=progress))}
