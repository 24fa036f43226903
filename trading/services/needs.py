"""FlexRequests from a congestion forecast's needs (issue 11 item 3): the DSO reviews, sets a price limit, posts.

A forecast run stores the flexibility each zone needs per PTU (grid/needs.py). Posting turns every block of
consecutive PTUs in the product's direction into one FlexRequest of the product, all or nothing: one request that
cannot be posted (no open session, a zone not in the market) posts none and says which and why. Posting is
idempotent per forecast run, product and zone: while requests posted from the run are open in a zone, a second
post (a double click, a retried API call) posts nothing and names them; the run's row lock orders two concurrent
posts, so the second sees the first's requests.
"""

from __future__ import annotations

from django.db import transaction

from accounts.context import Actor
from accounts.models import Role
from flexmarket.errors import DomainError
from grid.models import ForecastRun, GridLocation
from grid.selectors import forecast_need_blocks
from trading.errors import TradingErrorCode as Code
from trading.models import FlexRequest, Product
from trading.selectors import OPEN_STATES
from trading.services.orders import request_submit


def requests_from_needs(
    *,
    actor: Actor,
    forecast_run: ForecastRun,
    product: Product,
    price,
    grid_location_ids: list[int] | None = None,
) -> list[FlexRequest]:
    """Post one FlexRequest per need block of the product's direction (optionally only these zones)."""
    if not actor.has_role(Role.DSO) or forecast_run.network_model.dso_id != getattr(
        actor.organisation, "pk", None
    ):
        raise DomainError(Code.ROLE, "Only the DSO whose forecast it is posts requests from its needs.")
    blocks = [b for b in forecast_need_blocks(forecast_run) if b["direction"] == product.direction]
    if grid_location_ids is not None:
        wanted = {int(z) for z in grid_location_ids}
        blocks = [b for b in blocks if b["grid_location"] in wanted]
    if not blocks:
        raise DomainError(
            Code.INVALID_STATE,
            f"The forecast needs no {product.direction} flexibility in the chosen zones.",
            field="product",
        )
    zones = {z.pk: z for z in GridLocation.objects.filter(pk__in={b["grid_location"] for b in blocks})}
    reference = f"forecast-{forecast_run.pk}"
    posted = []
    with transaction.atomic():
        ForecastRun.objects.select_for_update().filter(pk=forecast_run.pk).first()
        earlier = list(
            FlexRequest.objects.filter(
                owner=actor.organisation,
                product=product,
                external_id=reference,
                grid_location_id__in=zones,
                state__in=OPEN_STATES,
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if earlier:
            raise DomainError(
                Code.INVALID_STATE,
                "These needs were already posted: open requests "
                + ", ".join(f"#{pk}" for pk in earlier)
                + " came from this forecast. Cancel them to post again. Nothing was posted.",
                field="product",
            )
        for block in blocks:
            zone = zones[block["grid_location"]]
            try:
                posted.append(
                    request_submit(
                        actor=actor,
                        grid_location=zone,
                        product=product,
                        ptu_start=block["ptu_start"],
                        quantities_kw=block["quantities_kw"],
                        price=price,
                        external_id=reference,
                    )
                )
            except DomainError as error:
                raise DomainError(
                    error.code,
                    f"{zone.name}, from {block['ptu_start']:%Y-%m-%d %H:%M} UTC: {error.message} Nothing was posted.",
                    field=error.field if error.field in ("price",) else "product",
                ) from error
    return posted
