"""What-if replays of cleared sessions (issue 11 item 7): a sandbox re-clearing compared with the stored run."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.context import SYSTEM
from accounts.models import AuditEvent
from flexmarket.errors import DomainError
from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.test_services import close, offer, request
from trading import services
from trading.clearing.auction import AuctionOrders, clear_auction
from trading.clearing.replay import ReplayChanges, apply_changes, summarise
from trading.models import ClearingReplay, Contract, FlexOffer, FlexRequest

URL = "/api/v1/replays/"


# --- the pure part ----------------------------------------------------------------------------------


def market(offers, requests, n_zones=2, n_ptus=2) -> AuctionOrders:
    """offers / requests: (zone, [kW per PTU], price); divisible offers, no minimums."""

    def qty(rows):
        return np.array([q for _, q, _ in rows], dtype=float).reshape(len(rows), n_ptus)

    return AuctionOrders(
        n_ptus=n_ptus,
        n_zones=n_zones,
        offer_zone=np.array([z for z, _, _ in offers], dtype=int),
        offer_qty=qty(offers),
        offer_min=np.zeros(len(offers)),
        offer_price=np.array([p for _, _, p in offers], dtype=float),
        offer_block=np.zeros(len(offers), dtype=bool),
        request_zone=np.array([z for z, _, _ in requests], dtype=int),
        request_qty=qty(requests),
        request_price=np.array([p for _, _, p in requests], dtype=float),
    )


def test_apply_changes_leaves_out_a_removed_zone_and_offers_above_the_cap():
    orders = market(
        offers=[(0, [10, 10], 40), (1, [10, 0], 30), (0, [5, 5], 90)],
        requests=[(0, [12, 12], 100), (1, [8, 0], 100)],
    )
    changed = apply_changes(orders, ReplayChanges("uniform", frozenset({1}), price_cap=50.0))
    assert changed.offer_index.tolist() == [0] and changed.request_index.tolist() == [0]
    assert changed.orders.offer_price.tolist() == [40.0] and changed.orders.request_zone.tolist() == [0]
    nothing = apply_changes(orders, ReplayChanges("uniform"))
    assert nothing.orders.n_offers == 3 and nothing.orders.n_requests == 2


def test_summary_of_a_hand_checked_clearing():
    """Zone 0: 10 kW at 40 and 10 kW at 60 meet 15 kW at up to 100 -> uniform price 60, 15 kW for one PTU."""
    orders = market(offers=[(0, [10], 40), (0, [10], 60)], requests=[(0, [15], 100)], n_zones=1, n_ptus=1)
    summary = summarise(orders, clear_auction(orders, pricing="uniform"), [7])
    assert summary["volume_kwh"] == 3.75  # 15 kW for a quarter of an hour
    # 3.75 kWh x 60 EUR/MWh = 0.225 EUR exactly, rounded once, half to even (a float sum gives 0.22 or 0.23).
    assert summary["cost_eur"] == "0.22"
    assert summary["zones"]["7"]["average_price"] == "60.0000" and summary["zones"]["7"]["prices"] == [60.0]
    assert summary["welfare_eur"] == "0.20"  # (100 - 40) x 2.5 kWh + (100 - 60) x 1.25 kWh, / 1000
    pay_as_bid = summarise(orders, clear_auction(orders, pricing="pay_as_bid"), [7])
    assert pay_as_bid["volume_kwh"] == 3.75 and pay_as_bid["cost_eur"] == "0.18"  # 0.100 + 0.075 = 0.175


orders_strategy = st.lists(
    st.tuples(st.integers(0, 2), st.lists(st.integers(0, 40), min_size=2, max_size=2), st.integers(1, 30)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(offers=orders_strategy, requests=orders_strategy, removed=st.integers(0, 2))
def test_removing_a_zone_leaves_the_other_zones_exactly_as_they_cleared(offers, requests, removed):
    """Without a network, zones clear independently: a replay without zone k changes no other zone's volume
    or prices (an independent check of apply_changes and of the age-ordered tie rule)."""
    orders = market(
        offers=[(z, q, p * 5) for z, q, p in offers],
        requests=[(z, q, p * 5 + 50) for z, q, p in requests],
        n_zones=3,
    )
    zones = [101, 102, 103]
    before = summarise(orders, clear_auction(orders, pricing="uniform"), zones)
    changed = apply_changes(orders, ReplayChanges("uniform", frozenset({removed})))
    after = summarise(changed.orders, clear_auction(changed.orders, pricing="uniform"), zones)
    for z, zone in enumerate(zones):
        if z == removed:
            assert after["zones"][str(zone)]["volume_kwh"] == 0
            continue
        assert after["zones"][str(zone)]["volume_kwh"] == pytest.approx(
            before["zones"][str(zone)]["volume_kwh"]
        )
        assert after["zones"][str(zone)]["prices"] == before["zones"][str(zone)]["prices"]


@settings(max_examples=60, deadline=None)
@given(offers=orders_strategy, requests=orders_strategy)
def test_summary_volume_and_uniform_cost_agree_with_the_allocation(offers, requests):
    """Reference: volume is the accepted offer kW / 4; at a uniform price every kWh of a zone and PTU is paid
    that zone's price (divisible offers)."""
    orders = market(offers=offers, requests=[(z, q, p + 40) for z, q, p in requests], n_zones=3)
    result = clear_auction(orders, pricing="uniform")
    summary = summarise(orders, result, [1, 2, 3])
    assert summary["volume_kwh"] == pytest.approx(result.offer_alloc.sum() / 4, abs=1e-3)
    reference = 0.0
    for z in range(3):
        accepted = result.offer_alloc[orders.offer_zone == z].sum(axis=0)
        prices = np.nan_to_num(result.zone_price[z])
        reference += float((accepted / 4 * prices).sum() / 1000)
    assert float(summary["cost_eur"]) == pytest.approx(reference, abs=0.006)


# --- the service, the task and the pages ------------------------------------------------------------


@pytest.fixture
def cleared(actor_dso, actor_esp, dso_org, esp_org, session, ptu17):
    """Two zones of the DSO: north clears 100 kW at 50 against an offer at 80 left over; south 60 kW at 40."""
    north, south = (
        GridLocationFactory(dso=dso_org, name="North"),
        GridLocationFactory(dso=dso_org, name="South"),
    )
    a_north = FlexAssetFactory(owner=esp_org, grid_location=north, max_up_kw=Decimal("500"))
    a_south = FlexAssetFactory(owner=esp_org, grid_location=south, max_up_kw=Decimal("500"))
    request(actor_dso, north, session.product, ptu17, qty=(100,), price=120)
    request(actor_dso, south, session.product, ptu17, qty=(60,), price=120)
    offer(actor_esp, a_north, session.product, ptu17, qty=(70,), price=50)
    offer(actor_esp, a_north, session.product, ptu17, qty=(70,), price=80)
    offer(actor_esp, a_south, session.product, ptu17, qty=(60,), price=40)
    close(session)
    run = services.session_clear(session=session, actor=SYSTEM)
    assert run.state == "succeeded"
    session.refresh_from_db()
    return {"session": session, "run": run, "north": north, "south": south}


def replay(actor, cleared, capture, **changes):
    with capture(execute=True):
        made = services.replay_request(actor=actor, session=cleared["session"], **changes)
    made.refresh_from_db()
    return made


def stored_state():
    return (
        sorted(Contract.objects.values_list("pk", "state")),
        sorted(FlexOffer.objects.values_list("pk", "state", "remaining_kw")),
        sorted(FlexRequest.objects.values_list("pk", "state", "remaining_kw")),
    )


@pytest.mark.django_db
def test_an_unchanged_replay_reproduces_the_stored_run_and_writes_nothing(
    actor_dso, cleared, django_capture_on_commit_callbacks
):
    before = stored_state()
    made = replay(actor_dso, cleared, django_capture_on_commit_callbacks)
    assert made.state == "succeeded" and made.reproduced is True
    run = cleared["run"]
    extra = {"offers_left_out": 0, "requests_left_out": 0}
    assert made.result == made.baseline | extra  # the same clearing twice: identical summaries
    assert made.result["volume_kwh"] == float(run.cleared_volume_kwh) == (100 + 60) / 4
    assert Decimal(made.result["welfare_eur"]) == Decimal(repr(run.objective)).quantize(Decimal("0.01"))
    assert stored_state() == before  # no contract, no order changed
    assert AuditEvent.objects.filter(action="session.replay_request").count() == 1


@pytest.mark.django_db
def test_removing_a_zone_and_capping_prices_change_only_what_they_touch(
    actor_fmo, cleared, django_capture_on_commit_callbacks
):
    north, south = cleared["north"], cleared["south"]
    made = replay(actor_fmo, cleared, django_capture_on_commit_callbacks, removed_zone_ids=[south.pk])
    zones = made.result["zones"]
    assert zones[str(south.pk)]["volume_kwh"] == 0 and zones[str(south.pk)]["removed"] is True
    assert zones[str(north.pk)] == made.baseline["zones"][str(north.pk)]
    capped = replay(actor_fmo, cleared, django_capture_on_commit_callbacks, price_cap=Decimal("60"))
    # North loses the 80 EUR offer it needed for 30 of its 100 kW; south is untouched.
    assert capped.result["zones"][str(north.pk)]["volume_kwh"] == 70 / 4
    assert capped.result["zones"][str(south.pk)] == capped.baseline["zones"][str(south.pk)]
    assert capped.result["offers_left_out"] == 1


@pytest.mark.django_db
def test_pay_as_bid_changes_what_buyers_pay_not_what_is_cleared(
    actor_dso, cleared, django_capture_on_commit_callbacks
):
    made = replay(actor_dso, cleared, django_capture_on_commit_callbacks, pricing_rule="pay_as_bid")
    assert made.baseline["volume_kwh"] == made.result["volume_kwh"]
    north = str(cleared["north"].pk)
    # Uniform: 100 kW at the marginal 80; pay as bid: 70 at 50 and 30 at 80.
    assert made.baseline["zones"][north]["cost_eur"] == "2.00"  # 25 kWh x 80 EUR/MWh
    assert made.result["zones"][north]["cost_eur"] == "1.48"  # 17.5 x 50 + 7.5 x 80 = 1.475, half to even


@pytest.mark.django_db
def test_bad_replay_requests_are_refused_and_write_nothing(actor_dso, actor_esp, cleared, session, zone):
    def refused(actor, **changes):
        with pytest.raises(DomainError) as error:
            services.replay_request(actor=actor, session=cleared["session"], **changes)
        return error.value

    assert refused(actor_esp).code == "role_required"
    assert refused(actor_dso, pricing_rule="cheapest").field == "pricing_rule"
    assert refused(actor_dso, price_cap="-5").field == "price_cap"
    assert refused(actor_dso, price_cap="lots").field == "price_cap"
    assert refused(actor_dso, removed_zone_ids=[zone.pk]).field == "removed_zones"  # no orders in the session
    assert ClearingReplay.objects.count() == 0 and not AuditEvent.objects.filter(
        action="session.replay_request"
    )


@pytest.mark.django_db
def test_an_open_session_cannot_be_replayed(actor_dso, session):
    with pytest.raises(DomainError) as error:
        services.replay_request(actor=actor_dso, session=session)
    assert error.value.code == "invalid_state"


@pytest.mark.django_db
def test_api_queues_a_replay_and_only_its_organisation_and_the_operator_see_it(
    client_for, dso_user, fmo_user, cleared, django_capture_on_commit_callbacks
):
    from tests.factories import OrganisationFactory, member_of

    client = client_for(dso_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            URL, {"session": cleared["session"].pk, "removed_zones": [cleared["south"].pk]}, format="json"
        )
    assert response.status_code == 202, response.content
    body = response.json()
    detail = client.get(f"{URL}{body['id']}/").json()
    assert detail["state"] == "succeeded" and detail["reproduced"] is True
    assert detail["result"]["zones"][str(cleared["south"].pk)]["volume_kwh"] == 0
    assert client_for(fmo_user).get(f"{URL}{body['id']}/").status_code == 200
    other = member_of(OrganisationFactory(roles=["dso"]))
    assert client_for(other).get(f"{URL}{body['id']}/").status_code == 404
    bad = client.post(URL, {"session": cleared["session"].pk, "price_cap": "-1"}, format="json")
    assert bad.status_code == 400 and "price_cap" in bad.json()["error"]["fields"]


@pytest.mark.django_db
def test_a_replay_that_fails_is_recorded_with_its_error(
    monkeypatch, actor_dso, cleared, django_capture_on_commit_callbacks
):
    from trading.services import replays

    def no_solver(*args, **kwargs):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(replays, "clear_auction", no_solver)
    made = replay(actor_dso, cleared, django_capture_on_commit_callbacks)
    assert made.state == "failed" and "solver exploded" in made.error
    assert made.result is None


@pytest.mark.django_db
def test_replay_page_shows_the_comparison(
    client, dso_user, actor_dso, cleared, django_capture_on_commit_callbacks
):
    client.force_login(dso_user)
    page = client.get(f"/trading/sessions/{cleared['session'].pk}/")
    assert b'data-testid="replay-panel"' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/trading/sessions/{cleared['session'].pk}/replay/",
            {"pricing_rule": "uniform", "removed_zones": [str(cleared["south"].pk)], "price_cap": ""},
        )
    assert response.status_code == 302
    page = client.get(response["Location"])
    text = page.content.decode()
    assert "reproduces clearing run" in text and "removed" in text and "South" in text
    refused = client.post(
        f"/trading/sessions/{cleared['session'].pk}/replay/", {"price_cap": "-3"}, follow=True
    )
    assert "price cap must be between" in refused.content.decode()
