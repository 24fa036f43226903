"""Prices in sight (issue 14 item 3): best bid and offer, last and indicative price, history and depth per product,
zone and PTU, on a page and in the API, anonymised, in a fixed number of queries.

The depth and best prices are checked against a plain-Python reference over random books (hypothesis); the
indicative price against the auction that actually clears the session afterwards.
"""

from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.context import SYSTEM
from tests.factories import OrganisationFactory, member_of
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import session_for
from trading import price_selectors, services
from trading.models import ClearingRun, Contract, FlexOffer, FlexRequest, MarketSession, OrderState

_references = count(1)


def _order(model, *, owner, zone, session, start, remaining, price, state=OrderState.ACTIVE, **extra):
    if model is FlexOffer and "asset" not in extra:
        extra["asset"] = FlexAssetFactory(owner=owner, grid_location=zone)
    return model.objects.create(
        owner=owner,
        grid_location=zone,
        product=session.product,
        session=session,
        direction=session.product.direction,
        ptu_start=start,
        quantities_kw=list(remaining),
        remaining_kw=list(remaining),
        price=Decimal(str(price)),
        state=state,
        **extra,
    )


def _contract(*, request, offer, start, kw, price, created_at, state=Contract.State.ACTIVE):
    return Contract.objects.create(
        reference=f"T-{next(_references)}",
        session=request.session,
        request=request,
        offer=offer,
        buyer=request.owner,
        seller=offer.owner,
        grid_location=request.grid_location,
        product=request.product,
        direction=request.direction,
        ptu_start=start,
        quantities_kw=[kw],
        prices=[str(price)],
        state=state,
        created_at=created_at,
    )


def _prices(session, zone, ptu_start):
    return price_selectors.market_prices(
        product=session.product, grid_location=zone, delivery_day=session.delivery_day, ptu_start=ptu_start
    )


def _levels(levels):
    return [(level.price, level.kw, level.cumulative_kw) for level in levels]


# --- the figures, hand-computed ------------------------------------------------------------------------


@pytest.mark.django_db
def test_best_bid_offer_and_depth_sum_open_orders_per_price_level(
    dso_org, tso_org, esp_org, esp2_org, zone, session, ptu17
):
    other_zone = GridLocationFactory(dso=dso_org)
    book = {"zone": zone, "session": session}
    _order(FlexRequest, owner=dso_org, start=ptu17, remaining=[100, 100], price=120, **book)
    _order(
        FlexRequest, owner=tso_org, start=ptu17 - timedelta(minutes=15), remaining=[5, 50], price=120, **book
    )
    _order(FlexRequest, owner=dso_org, start=ptu17, remaining=[30.5], price="90.5", **book)
    _order(
        FlexRequest, owner=dso_org, start=ptu17, remaining=[0], price=150, **book
    )  # nothing left in the PTU
    _order(
        FlexRequest, owner=dso_org, start=ptu17, remaining=[99], price=200, state=OrderState.FILLED, **book
    )
    _order(FlexRequest, owner=dso_org, start=ptu17 + timedelta(minutes=15), remaining=[9], price=250, **book)
    _order(
        FlexRequest, owner=dso_org, start=ptu17, remaining=[9], price=300, zone=other_zone, session=session
    )
    _order(
        FlexRequest, owner=dso_org, start=ptu17, remaining=[9], price=400, valid_until=timezone.now(), **book
    )
    _order(FlexOffer, owner=esp_org, start=ptu17, remaining=[60], price=50, **book)
    _order(FlexOffer, owner=esp2_org, start=ptu17, remaining=[40], price=50, **book)
    _order(FlexOffer, owner=esp2_org, start=ptu17, remaining=[20], price=70, **book)
    _order(
        FlexOffer, owner=esp_org, start=ptu17, remaining=[20], price=10, state=OrderState.CANCELLED, **book
    )

    prices = _prices(session, zone, ptu17)

    D = Decimal
    assert _levels(prices.bids) == [
        (D("120.0000"), D("150.000"), D("150.000")),
        (D("90.5000"), D("30.500"), D("180.500")),
    ]
    assert _levels(prices.offers) == [
        (D("50.0000"), D("100.000"), D("100.000")),
        (D("70.0000"), D("20.000"), D("120.000")),
    ]
    assert (prices.best_bid.price, prices.best_bid.kw) == (D("120.0000"), D("150.000"))
    assert (prices.best_offer.price, prices.best_offer.kw) == (D("50.0000"), D("100.000"))
    assert prices.spread == D("-70.0000")


@pytest.mark.django_db
def test_last_price_and_history_come_from_standing_contracts_of_the_zone_and_week(
    dso_org, esp_org, zone, session, ptu17
):
    day, product = session.delivery_day, session.product
    three_before = session_for(product, day - timedelta(days=3))
    ten_before = session_for(product, day - timedelta(days=10))
    other_zone = GridLocationFactory(dso=dso_org)
    now = timezone.now()

    def trade(on, start, kw, price, at, *, where=zone, state=Contract.State.ACTIVE):
        request = _order(
            FlexRequest, owner=dso_org, zone=where, session=on, start=start, remaining=[0], price=500
        )
        offer = _order(FlexOffer, owner=esp_org, zone=where, session=on, start=start, remaining=[0], price=1)
        _contract(request=request, offer=offer, start=start, kw=kw, price=price, created_at=at, state=state)

    trade(session, ptu17, 30, "40", now - timedelta(minutes=5))
    trade(session, ptu17, 10, "80", now - timedelta(minutes=1))  # the latest
    trade(session, ptu17, 10, "999", now, state=Contract.State.SUPERSEDED)
    trade(session, ptu17, 10, "777", now, where=other_zone)
    trade(session, ptu17 + timedelta(minutes=15), 10, "60", now)  # another PTU: history, not the last price
    trade(three_before, ptu17 - timedelta(days=3), 20, "45", now - timedelta(days=3))
    trade(ten_before, ptu17 - timedelta(days=10), 20, "1", now - timedelta(days=10))  # before the window

    prices = _prices(session, zone, ptu17)

    assert prices.last_price == Decimal("80.0000")
    assert prices.last_traded_at == now - timedelta(minutes=1)
    assert [(p.ptu_start, p.average_price, p.kw) for p in prices.history] == [
        (ptu17 - timedelta(days=3), Decimal("45.0000"), Decimal("20.000")),
        (ptu17, Decimal("50.0000"), Decimal("40.000")),  # (30 x 40 + 10 x 80) / 40
        (ptu17 + timedelta(minutes=15), Decimal("60.0000"), Decimal("10.000")),
    ]


@pytest.mark.django_db
def test_indicative_price_is_what_the_auction_then_clears_and_writes_nothing(
    dso_org, esp_org, esp2_org, zone, session, ptu17
):
    book = {"zone": zone, "session": session}
    _order(FlexOffer, owner=esp_org, start=ptu17, remaining=[60], price=50, **book)
    _order(FlexOffer, owner=esp2_org, start=ptu17, remaining=[40], price=70, **book)
    _order(FlexRequest, owner=dso_org, start=ptu17, remaining=[80], price=120, **book)

    prices = _prices(session, zone, ptu17)

    assert prices.indicative_price == Decimal(
        "70.0000"
    )  # the marginal (partly accepted) offer sets the price
    assert "gate closed now" in prices.indicative_note
    assert not ClearingRun.objects.exists() and not Contract.objects.exists()
    assert FlexOffer.objects.filter(gate_remaining_kw__isnull=False).count() == 0
    assert _prices(session, zone, ptu17 + timedelta(minutes=15)).indicative_price is None

    MarketSession.objects.filter(pk=session.pk).update(
        state=MarketSession.State.CLOSED, gate_closure=timezone.now() - timedelta(minutes=1)
    )
    session.refresh_from_db()
    assert services.session_clear(session=session, actor=SYSTEM).state == ClearingRun.State.SUCCEEDED
    assert {c.prices[int((ptu17 - c.ptu_start) / timedelta(minutes=15))] for c in Contract.objects.all()} == {
        "70.0000"
    }
    after = _prices(session, zone, ptu17)
    assert after.indicative_price is None and "gate is closed" in after.indicative_note
    assert after.last_price == Decimal("70.0000")


@pytest.mark.django_db
def test_indicative_price_is_reused_until_the_zones_open_orders_change(
    monkeypatch, actor_dso, esp_org, esp2_org, zone, session, ptu17
):
    from trading.services import auction

    solves = []
    engine = auction.clear_auction
    monkeypatch.setattr(auction, "clear_auction", lambda *a, **k: solves.append(1) or engine(*a, **k))
    book = {"zone": zone, "session": session, "start": ptu17}
    _order(FlexOffer, owner=esp_org, remaining=[60], price=50, **book)
    _order(FlexOffer, owner=esp2_org, remaining=[40], price=70, **book)
    request = _order(FlexRequest, owner=actor_dso.organisation, remaining=[80], price=120, **book)

    assert _prices(session, zone, ptu17).indicative_price == Decimal("70.0000")
    assert _prices(session, zone, ptu17).indicative_price == Decimal("70.0000")
    assert len(solves) == 1
    _order(FlexOffer, owner=esp2_org, remaining=[30], price=60, **book)  # a new offer: cleared again
    assert _prices(session, zone, ptu17).indicative_price == Decimal("60.0000")
    services.order_cancel(actor=actor_dso, order=request)  # the only buyer leaves
    assert _prices(session, zone, ptu17).indicative_price is None
    assert len(solves) == 2  # an empty side is not worth a solve


@pytest.mark.django_db
def test_continuous_product_has_no_indicative_price(dso_org, esp_org, zone, continuous_session, ptu17):
    ptu = continuous_session.delivery_start + timedelta(hours=17)
    _order(
        FlexOffer, owner=esp_org, zone=zone, session=continuous_session, start=ptu, remaining=[10], price=5
    )
    prices = _prices(continuous_session, zone, ptu)
    assert prices.indicative_price is None and prices.indicative_note.startswith("Continuous market")


# --- an independent reference on random books ---------------------------------------------------------

order_spec = st.fixed_dictionaries(
    {
        "side": st.sampled_from(["bid", "offer"]),
        "price": st.sampled_from(["10", "20.5", "33.3333", "45", "120"]) | st.decimals("0", "500", places=4),
        "remaining": st.lists(st.integers(0, 200_000).map(lambda m: m / 1000), min_size=1, max_size=3),
        "offset": st.integers(-2, 1),  # first PTU relative to the chosen one
        "state": st.sampled_from(["active", "partially_filled", "filled", "cancelled", "expired"]),
        "zone": st.sampled_from(["here", "there"]),
        "owner": st.sampled_from([0, 1]),
    }
)


def reference_book(specs):
    """Best bid/offer and depth by plain loops: sum open kW at the chosen PTU per (side, price), then sort and
    accumulate. Shares no code with trading/price_selectors.py."""
    sums = {"bid": {}, "offer": {}}
    for spec in specs:
        index = -spec["offset"]
        if spec["zone"] != "here" or spec["state"] not in ("active", "partially_filled"):
            continue
        if not 0 <= index < len(spec["remaining"]) or spec["remaining"][index] <= 0:
            continue
        price = Decimal(str(spec["price"]))
        sums[spec["side"]][price] = sums[spec["side"]].get(price, Decimal(0)) + Decimal(
            str(spec["remaining"][index])
        )
    result = {}
    for side, descending in (("bid", True), ("offer", False)):
        running, rows = Decimal(0), []
        for price in sorted(sums[side], reverse=descending):
            running += sums[side][price]
            rows.append((price.quantize(Decimal("0.0001")), sums[side][price], running))
        result[side] = rows
    return result


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(order_spec, max_size=12))
def test_depth_and_best_prices_match_a_plain_reference(
    dso_org, esp_org, esp2_org, zone, session, ptu17, specs
):
    there = GridLocationFactory(dso=dso_org)
    with transaction.atomic():
        for spec in specs:
            model, owners = (
                (FlexRequest, [dso_org, dso_org])
                if spec["side"] == "bid"
                else (FlexOffer, [esp_org, esp2_org])
            )
            _order(
                model,
                owner=owners[spec["owner"]],
                zone=zone if spec["zone"] == "here" else there,
                session=session,
                start=ptu17 + spec["offset"] * timedelta(minutes=15),
                remaining=spec["remaining"],
                price=spec["price"],
                state=spec["state"],
            )
        prices = _prices(session, zone, ptu17)
        expected = reference_book(specs)
        assert [(p, k.normalize(), c.normalize()) for p, k, c in _levels(prices.bids)] == [
            (p, k.normalize(), c.normalize()) for p, k, c in expected["bid"]
        ]
        assert [(p, k.normalize(), c.normalize()) for p, k, c in _levels(prices.offers)] == [
            (p, k.normalize(), c.normalize()) for p, k, c in expected["offer"]
        ]
        assert (prices.best_bid.price if prices.best_bid else None) == (
            expected["bid"][0][0] if expected["bid"] else None
        )
        assert (prices.best_offer.price if prices.best_offer else None) == (
            expected["offer"][0][0] if expected["offer"] else None
        )
        transaction.set_rollback(True)


# --- the API -------------------------------------------------------------------------------------------


def _url(session, zone, **extra):
    params = {
        "product": session.product.pk,
        "grid_location": zone.pk,
        "delivery_day": session.delivery_day,
    } | extra
    return "/api/v1/prices/?" + "&".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture
def small_book(dso_org, esp_org, esp2_org, zone, session, ptu17):
    book = {"zone": zone, "session": session, "start": ptu17}
    _order(FlexRequest, owner=dso_org, remaining=[80], price=120, **book)
    _order(FlexOffer, owner=esp_org, remaining=[60], price=50, **book)
    _order(FlexOffer, owner=esp2_org, remaining=[40], price=70, **book)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["fmo_user", "dso_user", "tso_user", "esp_user", "observer"])
def test_every_participant_gets_the_prices(request, who, client_for, small_book, zone, session, ptu17):
    user = (
        member_of(OrganisationFactory(roles=["OBSERVER"], legal_name="Curious Researcher"))
        if who == "observer"
        else request.getfixturevalue(who)
    )
    response = client_for(user).get(_url(session, zone))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ptu_start"] == ptu17.isoformat().replace("+00:00", "Z")  # 17:00 local by default
    assert body["best_bid"] == {"price": "120.0000", "kw": "80.000", "cumulative_kw": "80.000"}
    assert body["best_offer"] == {"price": "50.0000", "kw": "60.000", "cumulative_kw": "60.000"}
    assert [level["cumulative_kw"] for level in body["offers"]] == ["60.000", "100.000"]
    assert body["indicative_price"] == "70.0000" and body["session"]["state"] == "open"


@pytest.mark.django_db
def test_depth_and_prices_name_no_order_or_organisation(
    client_for, esp_user, small_book, zone, session, dso_org, esp_org, esp2_org
):
    response = client_for(esp_user).get(_url(session, zone))
    body = response.json()
    assert set(body) == {
        "product", "grid_location", "grid_location_name", "delivery_day", "ptu_start", "session", "best_bid",
        "best_offer", "spread", "last_price", "last_traded_at", "indicative_price", "indicative_note", "history",
        "bids", "offers",
    }  # fmt: skip
    for level in [*body["bids"], *body["offers"], body["best_bid"], body["best_offer"]]:
        assert set(level) == {"price", "kw", "cumulative_kw"}
    text = response.content.decode()
    for organisation in (dso_org, esp_org, esp2_org):
        assert organisation.legal_name not in text and organisation.code not in text
    assert "owner" not in text and "order" not in text.replace("orders", "")
    page = client_for(esp_user).get(f"/trading/prices/?product={session.product.pk}&grid_location={zone.pk}")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="depth-chart"' in html
    for organisation in (dso_org, esp2_org):  # the viewer's own organisation is named in the navbar only
        assert organisation.legal_name not in html


@pytest.mark.django_db
def test_anonymous_may_not_read_prices(api_client, zone, session):
    assert api_client.get(_url(session, zone)).status_code in (401, 403)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"product": "nope"}, "product"),
        ({"product": "999999"}, "product"),
        ({"product": str(2**70)}, "product"),
        ({"grid_location": str(2**70)}, "grid_location"),
        ({"grid_location": "abc"}, "grid_location"),
        ({"delivery_day": "2026-13-01"}, "delivery_day"),
        ({"delivery_day": "1900-01-01"}, "delivery_day"),
        ({"ptu_start": "yesterday"}, "ptu_start"),
    ],
)
def test_bad_parameters_get_a_400_with_the_field(client_for, esp_user, zone, session, params, field):
    response = client_for(esp_user).get(_url(session, zone, **params))
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_missing_parameters_and_wrong_zone_or_ptu_are_field_errors(
    client_for, esp_user, zone, session, ptu17
):
    client = client_for(esp_user)
    missing = client.get("/api/v1/prices/")
    assert missing.status_code == 400
    assert set(missing.json()["error"]["fields"]) == {"product", "grid_location", "delivery_day"}
    session.product.market.grid_locations.add(zone)
    outside = GridLocationFactory()
    assert "grid_location" in client.get(_url(session, outside)).json()["error"]["fields"]
    off_boundary = (ptu17 + timedelta(minutes=7)).isoformat().replace("+00:00", "Z")
    assert "ptu_start" in client.get(_url(session, zone, ptu_start=off_boundary)).json()["error"]["fields"]
    next_day = (ptu17 + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert "ptu_start" in client.get(_url(session, zone, ptu_start=next_day)).json()["error"]["fields"]


# --- the page ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["fmo_user", "dso_user", "tso_user", "esp_user"])
def test_page_is_in_the_navbar_and_shows_the_figures(request, who, client_for, small_book, zone, session):
    client = client_for(request.getfixturevalue(who))
    html = client.get("/trading/prices/").content.decode()
    assert 'href="/trading/prices/"' in html
    assert 'data-testid="best-bid"' in html and "120.00" in html and "80 kW" in html
    assert "70.00" in html and 'data-testid="depth-chart"' in html
    assert "17:00" in html  # the PTU by local clock time


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("day=not-a-day", "day"),
        ("day=1800-01-01", "day"),
        ("grid_location=0", "grid_location"),
        ("ptu=500", "ptu"),
    ],
)
def test_page_bad_input_shows_the_field_error(client_for, esp_user, zone, session, query, field):
    response = client_for(esp_user).get(f"/trading/prices/?{query}")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-testid="prices-error-{field}"' in html and 'data-testid="best-bid"' not in html


@pytest.mark.django_db
def test_page_opens_where_a_grid_operator_wants_flexibility(
    client_for, esp_user, dso_org, zone, session, ptu17
):
    wanted = GridLocationFactory(dso=dso_org, name="Zz last by name")
    start = ptu17 + timedelta(hours=1)
    _order(FlexRequest, owner=dso_org, zone=wanted, session=session, start=start, remaining=[25], price=99)
    response = client_for(esp_user).get("/trading/prices/")
    assert response.context["prices"].grid_location == wanted
    assert response.context["prices"].ptu_start == start  # the request's first PTU, not the 17:00 default
    assert response.context["prices"].best_bid.price == Decimal("99.0000")


@pytest.mark.django_db
def test_page_offers_both_repeated_hours_of_the_autumn_dst_day(client_for, esp_user, dso_org, zone, product):
    from datetime import UTC, date, datetime

    autumn = session_for(product, date(2026, 10, 25))
    repeated = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 CET, the second 02:15 of the day
    _order(FlexRequest, owner=dso_org, zone=zone, session=autumn, start=repeated, remaining=[7], price=33)
    client = client_for(esp_user)
    form = client.get(f"/trading/prices/?product={product.pk}&day=2026-10-25").context["form"]
    labels = [label for _, label in form.fields["ptu"].choices]
    assert len(labels) == 100 and labels.count("02:15 CEST") == 1 and labels.count("02:15 CET") == 1
    index = labels.index("02:15 CET")
    response = client.get(
        f"/trading/prices/?product={product.pk}&grid_location={zone.pk}&day=2026-10-25&ptu={index}"
    )
    assert response.context["prices"].ptu_start == repeated
    assert response.context["prices"].best_bid.price == Decimal("33.0000")
    assert "02:15 CET" in response.content.decode()


@pytest.mark.django_db
def test_api_on_a_day_without_session_and_on_a_continuous_product(
    client_for, esp_user, zone, session, continuous_session
):
    client = client_for(esp_user)
    later = session.delivery_day + timedelta(days=30)
    body = client.get(_url(session, zone, delivery_day=later)).json()
    assert body["session"] is None and body["indicative_note"] == "No session for this delivery day."
    assert body["bids"] == [] and body["best_offer"] is None and body["history"] == []
    body = client.get(_url(continuous_session, zone)).json()
    assert body["indicative_price"] is None and body["indicative_note"].startswith("Continuous market")


@pytest.mark.django_db
def test_page_with_malformed_parameters_is_not_a_server_error(client_for, esp_user, zone, session):
    response = client_for(esp_user).get("/trading/prices/?product=%00&grid_location=1e3&day=%00&ptu=abc")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="prices-error-product"' in html and 'data-testid="prices-error-ptu"' in html


@pytest.mark.django_db
def test_page_without_products_or_zones_says_so(client_for, esp_user, product):
    from grid.models import GridLocation

    client = client_for(esp_user)
    assert not GridLocation.objects.exists()
    assert f"No zone trades {product.name} yet." in client.get("/trading/prices/").content.decode()
    product.is_active = False
    product.save()
    assert "No active product." in client.get("/trading/prices/").content.decode()


# --- queries do not grow with the book -----------------------------------------------------------------


def _grow_book(orgs, zone, session, ptu17, n):
    dso_org, esp_org = orgs
    asset = FlexAssetFactory(owner=esp_org, grid_location=zone)
    for i in range(n):
        _order(
            FlexRequest,
            owner=dso_org,
            zone=zone,
            session=session,
            start=ptu17,
            remaining=[10, 10],
            price=100 + i,
        )
        offer = _order(
            FlexOffer,
            owner=esp_org,
            zone=zone,
            session=session,
            start=ptu17,
            remaining=[10],
            price=20 + i,
            asset=asset,
        )
        request = FlexRequest.objects.filter(session=session).first()
        _contract(request=request, offer=offer, start=ptu17, kw=5, price=30 + i, created_at=timezone.now())


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["page", "api"])
def test_query_count_does_not_grow_with_orders(
    where, client_for, esp_user, dso_org, esp_org, zone, session, ptu17, django_assert_max_num_queries
):
    client = client_for(esp_user)
    url = (
        f"/trading/prices/?product={session.product.pk}&grid_location={zone.pk}"
        if where == "page"
        else _url(session, zone)
    )

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    _grow_book((dso_org, esp_org), zone, session, ptu17, 2)
    small = queries()
    _grow_book((dso_org, esp_org), zone, session, ptu17, 30)
    assert queries() == small  # both clear the book anew (the orders changed)
    # Sign-in and organisation (5), products, zones, session, contracts, the book (2), the open orders' stamp (2)
    # and, unless the indicative price is cached, the auction's load (2); the page adds its default day and the
    # navbar's notification count.
    limit = 18 if where == "page" else 16
    assert small <= limit
    with django_assert_max_num_queries(limit - 2):  # the same book again: the indicative price is cached
        client.get(url)


# --- the charts ----------------------------------------------------------------------------------------


def test_history_chart_breaks_the_line_where_nothing_traded():
    from zoneinfo import ZoneInfo

    from trading.charts import price_history

    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    points = [
        price_selectors.HistoryPoint(start, Decimal("40"), Decimal("5")),
        price_selectors.HistoryPoint(start + timedelta(minutes=15), Decimal("45"), Decimal("5")),
        price_selectors.HistoryPoint(start + timedelta(hours=5), Decimal("60"), Decimal("5")),
    ]
    trace = price_history(points, ZoneInfo("Europe/Amsterdam"), "EUR/MWh")["data"][0]
    assert trace["y"] == [40.0, 45.0, None, 60.0]
    assert price_history([], ZoneInfo("Europe/Amsterdam"), "EUR/MWh") is None


def test_depth_chart_steps_from_zero_at_the_best_price_to_the_edge():
    from trading.charts import depth

    level = price_selectors.DepthLevel
    bids = [
        level(Decimal("120"), Decimal("80"), Decimal("80")),
        level(Decimal("95"), Decimal("40"), Decimal("120")),
    ]
    offers = [level(Decimal("50"), Decimal("60"), Decimal("60"))]
    figure = depth(bids, offers, "EUR/MWh")
    bid_trace, offer_trace = figure["data"]
    low, high = figure["layout"]["xaxis"]["range"]
    assert bid_trace["x"] == [120.0, 120.0, 95.0, low] and bid_trace["y"] == [0.0, 80.0, 120.0, 120.0]
    assert offer_trace["x"] == [50.0, 50.0, high] and offer_trace["y"] == [0.0, 60.0, 60.0]
    assert low < 50 and high > 120
    assert depth([], [], "EUR/MWh") is None
