"""The capacity ledger: what an asset has promised, per PTU and direction, so the same kW is never sold twice.

An offer holds what its standing (active or settled) contracts bought plus, while it is open, its remaining kW.
The ledger (CapacityReservation) is the sum of what every non-agreement offer holds, per member asset and PTU.
Services record each change as it happens (a fill moves kW from remaining to a contract and changes nothing; a
cancellation, expiry or rejection releases the remaining; a superseded contract releases what it bought), so the
capability check is one indexed read whatever the number of open offers.

Portfolio offers reserve their members' capacity: at submission each PTU's kW is split over the members in
proportion to their free capacity (`member_allocation`), and `held` is split the same way (three decimals,
the remainder on the last member), so reserving and releasing never drift.

Availability agreements hold their capacity inside their windows for their whole validity; they are added on
the fly (few per asset), and the offers they generate live inside that reservation (not in the ledger).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection, transaction
from django.db.models import Q

from flexmarket import ptu as ptus
from flexmarket.bulk import copy_bigints
from flexmarket.errors import DomainError
from flexmarket.localtime import moment_label
from grid.models import FlexAsset, Portfolio
from trading.errors import TradingErrorCode as Code
from trading.models import (
    AvailabilityAgreement,
    CapacityReservation,
    Contract,
    Direction,
    FlexOffer,
    OrderState,
    Product,
)

KW = Decimal("0.001")
TOLERANCE_KW = 1e-6
OPEN = (OrderState.ACTIVE, OrderState.PARTIALLY_FILLED)


def _capability(asset: FlexAsset, direction: str) -> float:
    return float(asset.max_up_kw if direction == Direction.UP else asset.max_down_kw)


def _kw(value: float) -> Decimal:
    return Decimal(repr(round(float(value), 3))).quantize(KW)


# --- reading the ledger -----------------------------------------------------------------------------


def ledger_reserved(
    *, asset_ids: Iterable[int], direction: str, start: datetime, n: int
) -> dict[int, np.ndarray]:
    """kW held in the ledger per asset for the n PTUs from `start` (one indexed range read)."""
    asset_ids = list(asset_ids)
    result = {asset_id: np.zeros(n) for asset_id in asset_ids}
    rows = CapacityReservation.objects.filter(
        asset_id__in=asset_ids, direction=direction, ptu_start__gte=start, ptu_start__lt=start + n * ptus.PTU
    ).values_list("asset_id", "ptu_start", "reserved_kw")
    for asset_id, moment, kw in rows:
        result[asset_id][int((moment - start) / ptus.PTU)] += float(kw)
    return result


def _window_mask(windows: list, starts: list[datetime], zone: ZoneInfo) -> np.ndarray:
    """True for each PTU start (UTC) inside one of the agreement's local windows."""
    mask = np.zeros(len(starts), dtype=bool)
    for i, start in enumerate(starts):
        local = start.astimezone(zone)
        clock = local.strftime("%H:%M")
        mask[i] = any(
            local.weekday() in window["days"] and window["start"] <= clock < window["end"]
            for window in windows
        )
    return mask


def agreement_profile(agreement: AvailabilityAgreement, start: datetime, n: int) -> np.ndarray:
    """kW the agreement holds for each of the n PTUs from `start` (its capacity inside windows and validity)."""
    zone = ZoneInfo(agreement.product.market.time_zone)
    starts = [start + i * ptus.PTU for i in range(n)]
    days = np.array([s.astimezone(zone).date() for s in starts])
    valid = (days >= agreement.valid_from) & (days <= agreement.valid_to)
    mask = _window_mask(agreement.windows, starts, zone) & valid
    return np.where(mask, float(agreement.capacity_kw), 0.0)


def _member_shares(capabilities: dict[int, float]) -> dict[int, float]:
    total = sum(capabilities.values())
    return {asset_id: (cap / total if total else 0.0) for asset_id, cap in capabilities.items()}


def _agreement_ids(asset_ids: list[int], direction: str, first_day, last_day, exclude_id) -> list[int]:
    """Ids of active agreements on these assets (directly or through a portfolio) in the product direction whose
    validity meets [first_day, last_day]: one hand-written statement, without the ORM's query building, because
    every offer submission asks."""
    if not asset_ids:
        return []
    marks = ", ".join(["%s"] * len(asset_ids))
    members = Portfolio.assets.through._meta.db_table
    sql = (
        f"SELECT a.id FROM {AvailabilityAgreement._meta.db_table} a "
        f"JOIN {Product._meta.db_table} p ON p.id = a.product_id "
        "WHERE a.state = %s AND p.direction = %s AND a.valid_from <= %s AND a.valid_to >= %s "
        f"AND (a.asset_id IN ({marks}) OR a.portfolio_id IN "
        f"(SELECT m.portfolio_id FROM {members} m WHERE m.flexasset_id IN ({marks})))"
    )
    params = [AvailabilityAgreement.State.ACTIVE, direction, last_day, first_day, *asset_ids, *asset_ids]
    if exclude_id is not None:
        sql += " AND a.id <> %s"
        params.append(exclude_id)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def agreements_reserved(
    *,
    assets: list[FlexAsset],
    direction: str,
    start: datetime,
    n: int,
    exclude_agreement_id: int | None = None,
) -> dict[int, np.ndarray]:
    """kW held by active (or proposed, when asked) agreements per asset; portfolio agreements split by capability."""
    result = {asset.pk: np.zeros(n) for asset in assets}
    asset_ids = list(result)
    end_day = (start + n * ptus.PTU).date() + timedelta(days=1)
    found = _agreement_ids(
        asset_ids, direction, (start - timedelta(days=1)).date(), end_day, exclude_agreement_id
    )
    if not found:  # the common case (most assets hold no agreement): one light statement
        return result
    agreements = AvailabilityAgreement.objects.filter(pk__in=found).select_related(
        "product__market", "portfolio"
    )
    for agreement in agreements:
        profile = agreement_profile(agreement, start, n)
        if agreement.asset_id:
            if agreement.asset_id in result:
                result[agreement.asset_id] += profile
            continue
        members = {a.pk: _capability(a, direction) for a in agreement.portfolio.assets.all()}
        for asset_id, share in _member_shares(members).items():
            if asset_id in result:
                result[asset_id] += profile * share
    return result


# --- splitting what an offer holds over its member assets -------------------------------------------


def split_held(offer: FlexOffer, kw: np.ndarray) -> dict[int, np.ndarray]:
    """Split kW per PTU of an offer (aligned to offer.ptu_start) over its member assets.

    A single-asset offer puts it all on the asset; a portfolio offer splits each PTU in the proportions of its
    `member_allocation` (three decimals, the remainder on the last member so the split sums exactly).
    """
    kw = np.round(np.asarray(kw, dtype=float), 3)
    if offer.asset_id:
        return {offer.asset_id: kw}
    allocation = {int(k): np.asarray(v, dtype=float) for k, v in offer.member_allocation.items()}
    quantities = np.asarray(offer.quantities_kw, dtype=float)
    members = sorted(allocation)
    result, assigned = {}, np.zeros_like(kw)
    for asset_id in members[:-1]:
        share = np.divide(allocation[asset_id], quantities, out=np.zeros_like(kw), where=quantities > 0)
        result[asset_id] = np.round(kw * share, 3)
        assigned += result[asset_id]
    if members:
        result[members[-1]] = np.round(kw - assigned, 3)
    return result


def open_part(offer: FlexOffer, *, state: str | None = None, remaining=None) -> np.ndarray:
    """What an offer holds beyond its contracts: its remaining kW while open, nothing once closed."""
    state = state or offer.state
    values = offer.remaining_kw if remaining is None else remaining
    if state not in OPEN:
        return np.zeros(len(offer.quantities_kw))
    return np.asarray(values, dtype=float)


# --- writing the ledger -----------------------------------------------------------------------------


def _ledger_add(rows: dict[tuple[int, str, datetime], float]) -> None:
    """Add signed kW to ledger rows in one statement (insert or increment), in a fixed order against deadlocks."""
    items = [(key, _kw(kw)) for key, kw in sorted(rows.items()) if abs(kw) > TOLERANCE_KW]
    if not items:
        return
    if connection.vendor == "postgresql" and len(items) > COPY_ABOVE_ROWS:
        _ledger_add_copy(items)
        return
    ops = connection.ops
    table = CapacityReservation._meta.db_table
    for chunk_start in range(0, len(items), 500):
        chunk = items[chunk_start : chunk_start + 500]
        params: list = []
        for (asset_id, direction, moment), kw in chunk:
            params += [
                asset_id,
                direction,
                ops.adapt_datetimefield_value(moment),
                ops.adapt_decimalfield_value(kw, 14, 3),
            ]
        values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (asset_id, direction, ptu_start, reserved_kw) VALUES {values} "
                f"ON CONFLICT (asset_id, direction, ptu_start) DO UPDATE "
                f"SET reserved_kw = {table}.reserved_kw + excluded.reserved_kw",
                params,
            )


# A clearing changes up to (offers x PTUs) rows: above this many, PostgreSQL gets them by COPY into a scratch
# table and one INSERT ... SELECT (a module setting so tests can send small changes down the same path).
COPY_ABOVE_ROWS = 1000


def _ledger_add_copy(items: list[tuple[tuple[int, str, datetime], Decimal]]) -> None:
    table = CapacityReservation._meta.db_table
    with transaction.atomic(), connection.cursor() as wrapper:
        wrapper.execute(
            "CREATE TEMP TABLE IF NOT EXISTS fm_ledger_delta (asset_id bigint, direction varchar(4), "
            "ptu_start timestamptz, reserved_kw numeric(14, 3)) ON COMMIT DROP"
        )
        with wrapper.cursor.copy(
            "COPY fm_ledger_delta (asset_id, direction, ptu_start, reserved_kw) FROM STDIN"
        ) as copy:
            for (asset_id, direction, moment), kw in items:
                copy.write_row((asset_id, direction, moment, kw))
        # Rows in key order, as the small path writes them, against deadlocks with concurrent writers.
        wrapper.execute(
            f"INSERT INTO {table} (asset_id, direction, ptu_start, reserved_kw) "
            f"SELECT asset_id, direction, ptu_start, reserved_kw FROM fm_ledger_delta "
            f"ORDER BY asset_id, direction, ptu_start "
            f"ON CONFLICT (asset_id, direction, ptu_start) DO UPDATE "
            f"SET reserved_kw = {table}.reserved_kw + excluded.reserved_kw"
        )
        wrapper.execute("TRUNCATE fm_ledger_delta")


DIRECTIONS = (Direction.DOWN, Direction.UP)  # codes in the array path; sorted as the text sorts


def _ledger_add_arrays(folded: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Add summed changes given as arrays (asset, direction code, quarter since the epoch, kW)."""
    asset, direction, quarter, kw = folded
    kw = np.round(kw, 3)
    keep = np.abs(kw) > TOLERANCE_KW
    asset, direction, quarter, kw = asset[keep], direction[keep], quarter[keep], kw[keep]
    if not asset.size:
        return
    if connection.vendor != "postgresql" or asset.size <= COPY_ABOVE_ROWS:
        _ledger_add(
            {
                (a, DIRECTIONS[d], datetime.fromtimestamp(q * 900, tz=UTC)): v
                for a, d, q, v in zip(
                    asset.tolist(), direction.tolist(), quarter.tolist(), kw.tolist(), strict=True
                )
            }
        )
        return
    table = CapacityReservation._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS fm_ledger_millis (asset_id bigint, direction bigint, "
            "quarter bigint, milli_kw bigint) ON COMMIT DROP"
        )
        copy_bigints("fm_ledger_millis", asset, direction, quarter, np.rint(kw * 1000))
        # Rows in key order, as the small path writes them, against deadlocks with concurrent writers; kW go as
        # integer thousandths, so the numeric column gets exactly the three-decimal value the small path writes.
        names = ", ".join(f"'{d}'" for d in DIRECTIONS)
        cursor.execute(
            f"INSERT INTO {table} (asset_id, direction, ptu_start, reserved_kw) "
            f"SELECT asset_id, (ARRAY[{names}])[direction + 1], to_timestamp(quarter * 900), "
            f"milli_kw::numeric / 1000 FROM fm_ledger_millis "
            f"ORDER BY asset_id, direction, quarter "
            f"ON CONFLICT (asset_id, direction, ptu_start) DO UPDATE "
            f"SET reserved_kw = {table}.reserved_kw + excluded.reserved_kw"
        )
        cursor.execute("TRUNCATE fm_ledger_millis")


class LedgerChanges:
    """Collects signed kW per (asset, direction, PTU) and writes them in one statement.

    Agreement-generated offers (and contracts from them) live inside their agreement's reservation and are
    not in the ledger.
    """

    def __init__(self):
        self.rows: dict[tuple[int, str, datetime], float] = defaultdict(float)
        self.arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def offer(self, offer: FlexOffer, delta_kw, *, start: datetime | None = None) -> None:
        """Add kW per PTU to what an offer holds (`start`: the first PTU of delta_kw, default the offer's)."""
        if offer.availability_agreement_id:
            return
        delta = np.zeros(len(offer.quantities_kw))
        offset = int(((start or offer.ptu_start) - offer.ptu_start) / ptus.PTU)
        values = np.asarray(delta_kw, dtype=float)
        lo, hi = max(offset, 0), min(offset + values.size, delta.size)
        if hi > lo:
            delta[lo:hi] = values[lo - offset : hi - offset]
        for asset_id, kw in split_held(offer, delta).items():
            for i in np.nonzero(np.abs(kw) > TOLERANCE_KW)[0]:
                self.rows[(asset_id, offer.direction, offer.ptu_start + int(i) * ptus.PTU)] += float(kw[i])

    def close(self, offer: FlexOffer, new_state: str) -> None:
        """An open offer closes (cancelled, expired, rejected, or an aggressor's rest): release its remaining."""
        self.offer(offer, open_part(offer, state=new_state) - open_part(offer))

    def contract_released(self, contract: Contract, offer: FlexOffer) -> None:
        """A standing contract is superseded or cancelled: release what it bought."""
        self.offer(offer, -np.asarray(contract.quantities_kw, dtype=float), start=contract.ptu_start)

    def add_arrays(
        self, *, asset_ids: np.ndarray, directions: list[str], start: datetime, kw: np.ndarray
    ) -> None:
        """Many single-asset offers at once: row i of `kw` (PTUs from `start`) is added to asset_ids[i] in
        directions[i] (the clearing's path: no per-cell Python work until the write)."""
        rows, columns = np.nonzero(np.abs(kw) > TOLERANCE_KW)
        if not rows.size:
            return
        codes = np.array([DIRECTIONS.index(d) for d in directions], dtype=np.int64)
        quarter = int(start.timestamp()) // 900
        self.arrays.append((asset_ids[rows], codes[rows], quarter + columns, kw[rows, columns]))

    def write(self) -> None:
        if self.arrays:
            _ledger_add_arrays(self._folded())
        else:
            _ledger_add(self.rows)
        self.rows = defaultdict(float)
        self.arrays = []

    def _folded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every change (dict rows and arrays) summed per (asset, direction, quarter), in key order."""
        parts = list(self.arrays)
        if self.rows:
            keys = list(self.rows)
            parts.append(
                (
                    np.array([k[0] for k in keys], dtype=np.int64),
                    np.array([DIRECTIONS.index(k[1]) for k in keys], dtype=np.int64),
                    np.array([int(k[2].timestamp()) // 900 for k in keys], dtype=np.int64),
                    np.array([self.rows[k] for k in keys], dtype=float),
                )
            )
        asset, direction, quarter, kw = (np.concatenate(column) for column in zip(*parts, strict=True))
        order = np.lexsort((quarter, direction, asset))
        asset, direction, quarter, kw = asset[order], direction[order], quarter[order], kw[order]
        first = np.ones(asset.size, dtype=bool)
        first[1:] = (np.diff(asset) != 0) | (np.diff(direction) != 0) | (np.diff(quarter) != 0)
        starts = np.flatnonzero(first)
        return asset[starts], direction[starts], quarter[starts], np.add.reduceat(kw, starts)


# --- reserving (the capability check) ---------------------------------------------------------------


def _lock_assets(asset_ids: list[int]) -> dict[int, FlexAsset]:
    return {
        a.pk: a for a in FlexAsset.objects.select_for_update().filter(pk__in=sorted(asset_ids)).order_by("pk")
    }


def _refuse(backing, direction: str, moment: datetime, wanted: float, free: float, capability: float):
    raise DomainError(
        Code.ABOVE_CAPABILITY,
        f"{wanted:g} kW at {moment_label(moment)} is more than the {max(free, 0):g} kW of {backing}'s "
        f"{capability:g} kW {direction} capability still free (open offers, contracts and availability "
        "agreements hold the rest).",
        field="quantities_kw",
    )


def capacity_reserve(
    *,
    asset: FlexAsset | None,
    portfolio: Portfolio | None,
    direction: str,
    ptu_start: datetime,
    quantities: list[float],
) -> dict[str, list[float]]:
    """Check that the kW are free on every PTU (locking the asset rows) and return the member split.

    The caller writes the offer and then adds it to the ledger (`LedgerChanges().offer(offer, quantities)`).
    """
    n = len(quantities)
    wanted = np.asarray(quantities, dtype=float)
    member_ids = [asset.pk] if asset is not None else sorted(portfolio.assets.values_list("pk", flat=True))
    locked = _lock_assets(member_ids)
    members = [locked[i] for i in member_ids]
    held = ledger_reserved(asset_ids=member_ids, direction=direction, start=ptu_start, n=n)
    agreed = agreements_reserved(assets=members, direction=direction, start=ptu_start, n=n)
    free = {a.pk: _capability(a, direction) - held[a.pk] - agreed[a.pk] for a in members}
    total_free = sum(free.values()) if free else np.zeros(n)
    total_capability = sum(_capability(a, direction) for a in members)
    short = np.nonzero(wanted > total_free + TOLERANCE_KW)[0]
    if short.size:
        i = int(short[0])
        _refuse(
            asset or portfolio,
            direction,
            ptu_start + i * ptus.PTU,
            wanted[i],
            float(total_free[i]),
            total_capability,
        )
    if asset is not None:
        return {}
    # Portfolio: split each PTU over the members in proportion to their free capacity.
    clipped = {a: np.clip(f, 0, None) for a, f in free.items()}
    pool = sum(clipped.values())
    allocation, assigned = {}, np.zeros(n)
    for asset_id in member_ids[:-1]:
        share = np.divide(clipped[asset_id], pool, out=np.zeros(n), where=pool > 0)
        allocation[asset_id] = np.round(np.minimum(wanted * share, clipped[asset_id]), 3)
        assigned += allocation[asset_id]
    allocation[member_ids[-1]] = np.round(wanted - assigned, 3)
    return {str(k): v.tolist() for k, v in allocation.items()}


def agreement_capacity_check(agreement: AvailabilityAgreement) -> None:
    """Before an ESP accepts: the agreement's capacity must be free over its whole validity and windows."""
    zone = ZoneInfo(agreement.product.market.time_zone)
    start, _ = ptus.day_bounds_utc(agreement.valid_from, agreement.product.market.time_zone)
    _, end = ptus.day_bounds_utc(agreement.valid_to, agreement.product.market.time_zone)
    n = int((end - start) / ptus.PTU)
    direction = agreement.product.direction
    members = [agreement.asset] if agreement.asset_id else list(agreement.portfolio.assets.all())
    member_ids = [a.pk for a in members]
    locked = _lock_assets(member_ids)
    members = [locked[i] for i in member_ids]
    profile = agreement_profile(agreement, start, n)
    shares = (
        {agreement.asset_id: 1.0}
        if agreement.asset_id
        else _member_shares({a.pk: _capability(a, direction) for a in members})
    )
    held = ledger_reserved(asset_ids=member_ids, direction=direction, start=start, n=n)
    agreed = agreements_reserved(
        assets=members, direction=direction, start=start, n=n, exclude_agreement_id=agreement.pk
    )
    for member in members:
        free = _capability(member, direction) - held[member.pk] - agreed[member.pk]
        need = profile * shares[member.pk]
        short = np.nonzero(need > free + TOLERANCE_KW)[0]
        if short.size:
            i = int(short[0])
            moment = (start + i * ptus.PTU).astimezone(zone)
            raise DomainError(
                Code.ABOVE_CAPABILITY,
                f"{member} has only {max(float(free[i]), 0):g} kW {direction} free at {moment:%Y-%m-%d %H:%M %Z}; "
                f"the agreement needs {float(need[i]):g} kW.",
                field="capacity_kw",
            )


def _recompute(asset_ids: set[int] | None = None) -> dict[tuple[int, str, datetime], float]:
    """The ledger recomputed from offers and contracts (all assets, or those named): open remaining plus
    standing contracts, per (asset, direction, PTU)."""
    offers = FlexOffer.objects.filter(availability_agreement__isnull=True)
    contracts = Contract.objects.filter(
        state__in=[Contract.State.ACTIVE, Contract.State.SETTLED], offer__availability_agreement__isnull=True
    )
    if asset_ids is not None:
        touching = Q(asset_id__in=asset_ids) | Q(portfolio__assets__in=asset_ids)
        offers = offers.filter(touching).distinct()
        contracts = contracts.filter(offer__in=offers.values("pk"))
    changes = LedgerChanges()
    for offer in offers:
        changes.offer(offer, open_part(offer))
    for contract in contracts.select_related("offer"):
        changes.offer(contract.offer, contract.quantities_kw, start=contract.ptu_start)
    return {key: kw for key, kw in changes.rows.items() if asset_ids is None or key[0] in asset_ids}


def ledger_resync(*, asset_ids: Iterable[int]) -> None:
    """Rebuild the ledger rows of these assets from their offers and contracts. Used where an order was
    rejected whose stored quantities cannot be read, so what it held cannot be released as a difference."""
    ids = set(asset_ids)
    if not ids:
        return
    rows = _recompute(ids)
    CapacityReservation.objects.filter(asset_id__in=ids).delete()
    _ledger_add(rows)


def ledger_expected() -> dict[tuple[int, str, datetime], float]:
    """Recompute the ledger from scratch (for checks and tests)."""
    return {key: round(kw, 3) for key, kw in _recompute().items() if abs(kw) > 1e-3}


def ledger_actual() -> dict[tuple[int, str, datetime], float]:
    return {
        (asset_id, direction, moment): round(float(kw), 3)
        for asset_id, direction, moment, kw in CapacityReservation.objects.values_list(
            "asset_id", "direction", "ptu_start", "reserved_kw"
        )
        if abs(kw) > Decimal("0.001")
    }
