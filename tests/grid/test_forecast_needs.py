"""Needs from a congestion forecast (issue 11 item 3): computed with the forecast, relieving what they claim to,
served by the API, and posted as FlexRequests by the DSO in one action."""

from decimal import Decimal

import numpy as np
import pytest

from flexmarket.errors import DomainError
from grid import network, selectors, services, timeseries
from tests.grid.test_forecasts import NO_PROGNOSES, csv_file, evening_rows, forecast
from tests.trading.factories import ProductFactory, session_for, tomorrow
from trading.models import FlexRequest
from trading.services.needs import requests_from_needs

EVENING = list(range(68, 84))  # 17:00-21:00 local on a 96-PTU day


@pytest.fixture
def congested(actor_dso):
    """The demo's SimBench grid with feeder zones, and tomorrow's forecast with 9.5 MW of evening load on feeder 1."""
    model = services.network_model_create(
        actor=actor_dso, name="SimBench", example=network.SIMBENCH_PREFIX + network.DEMO_SIMBENCH_CODE
    )
    zones = services.grid_locations_from_feeders(
        actor=actor_dso, network_model=model, name_prefix="Zuid", code_prefix="ean.needs"
    )
    day = tomorrow()
    services.forecast_upload_csv(
        actor=actor_dso,
        network_model=model,
        delivery_day=day,
        file=csv_file(evening_rows(zones[0], 9500, day=day)),
    )
    run = forecast(actor_dso, model, day=day)
    assert run.state == "succeeded", run.error
    return {"model": model, "zones": zones, "run": run, "day": day}


@pytest.mark.django_db
def test_needs_are_found_only_at_congested_ptus_and_relieve_the_congestion(congested, actor_dso):
    run, zones = congested["run"], congested["zones"]
    needs = run.needs
    assert needs["zones"], needs
    needed_ptus = {int(t) for by_ptu in needs["zones"].values() for t in by_ptu}
    congested_ptus = {n for n, s in enumerate(run.zone_states[str(zones[0].pk)]) if s == "2"}
    assert needed_ptus and needed_ptus <= congested_ptus
    assert all(kw > 0 for by_ptu in needs["zones"].values() for kw in by_ptu.values())  # up: less load
    # Independent check: the batch AC power flow (power-grid-model) with the needs delivered as less demand at the
    # zones' buses brings every congested PTU back to (about) 100 %: linearisation error within 3 %.
    net, injections, _ = services.forecast_injections(
        network_model=congested["model"], delivery_day=congested["day"], prognoses=NO_PROGNOSES
    )
    before = timeseries.run_time_series(net, injections)
    position = {int(b): i for i, b in enumerate(net.bus.index)}
    mapping = services.bus_zone_mapping(network_model=congested["model"])
    for zone_id, by_ptu in needs["zones"].items():
        buses = [position[b] for b, z in mapping.items() if z == int(zone_id)]
        for t, kw in by_ptu.items():
            injections.bus_p_mw[int(t), buses] -= kw / 1000 / len(buses)
    after = timeseries.run_time_series(net, injections)
    rows = sorted(needed_ptus)
    assert before.line_loading_percent[rows].max() > 100
    assert after.line_loading_percent[rows].max() <= 103
    assert after.trafo_loading_percent[rows].max() <= 103


@pytest.mark.django_db
def test_a_forecast_without_congestion_needs_nothing(actor_dso):
    model = services.network_model_create(
        actor=actor_dso, name="SimBench", example=network.SIMBENCH_PREFIX + network.DEMO_SIMBENCH_CODE
    )
    services.grid_locations_from_feeders(
        actor=actor_dso, network_model=model, name_prefix="Z", code_prefix="ean.z"
    )
    run = forecast(actor_dso, model, day=tomorrow())
    assert run.congested_ptus == 0 and run.needs["zones"] == {}
    assert selectors.forecast_need_blocks(run) == []


@pytest.mark.django_db
def test_need_blocks_are_runs_of_consecutive_ptus_per_zone_and_direction(congested):
    run = congested["run"]
    run.needs = {
        "zones": {"7": {"3": 5.0, "4": 6.0, "9": 1.5, "10": -2.0}},
        "unsolvable": [],
        "linear_ok": [],
    }
    blocks = selectors.forecast_need_blocks(run)
    assert [(b["direction"], b["first_ptu"], b["quantities_kw"]) for b in blocks] == [
        ("up", 3, [5.0, 6.0]),
        ("up", 9, [1.5]),
        ("down", 10, [2.0]),
    ]
    starts = [b["ptu_start"] for b in blocks]
    assert (starts[1] - starts[0]).total_seconds() == 6 * 900


@pytest.mark.django_db
def test_needs_api_answers_the_owning_dso_only(congested, client_for, dso_user, dso2_user):
    url = f"/api/v1/forecast-runs/{congested['run'].pk}/needs/"
    body = client_for(dso_user).get(url).json()
    assert body and {b["direction"] for b in body} == {"up"}
    assert all(b["grid_location"] == congested["zones"][0].pk or b["quantities_kw"] for b in body)
    assert client_for(dso2_user).get(url).status_code == 404


@pytest.mark.django_db
def test_the_dso_posts_its_needs_as_flexrequests_in_one_action(congested, actor_dso, client_for, dso_user):
    product = ProductFactory(direction="up")
    session_for(product, congested["day"])
    blocks = selectors.forecast_need_blocks(congested["run"])
    response = client_for(dso_user).post(
        "/api/v1/flex-requests/from-needs/",
        {"forecast_run": congested["run"].pk, "product": product.pk, "price": "180"},
        format="json",
    )
    assert response.status_code == 201, response.content
    posted = FlexRequest.objects.order_by("ptu_start")
    assert [(r.grid_location_id, r.ptu_start, r.quantities_kw) for r in posted] == [
        (b["grid_location"], b["ptu_start"], b["quantities_kw"]) for b in blocks
    ]
    assert {r.price for r in posted} == {Decimal("180")}


@pytest.mark.django_db
def test_posting_needs_is_all_or_nothing_and_checked(congested, actor_dso, actor_esp, dso2_user, dso2_org):
    from accounts.context import Actor

    run = congested["run"]
    down = ProductFactory(direction="down")
    with pytest.raises(DomainError, match="needs no down flexibility"):
        requests_from_needs(actor=actor_dso, forecast_run=run, product=down, price=100)
    up_without_session = ProductFactory(direction="up")
    with pytest.raises(DomainError, match="Nothing was posted"):
        requests_from_needs(actor=actor_dso, forecast_run=run, product=up_without_session, price=100)
    with pytest.raises(DomainError) as error:
        requests_from_needs(
            actor=Actor(user=dso2_user, organisation=dso2_org), forecast_run=run, product=down, price=100
        )
    assert error.value.code == "role_required"
    up = ProductFactory(direction="up")
    session_for(up, congested["day"])
    with pytest.raises(DomainError):
        requests_from_needs(actor=actor_dso, forecast_run=run, product=up, price=-5)
    assert FlexRequest.objects.count() == 0


@pytest.mark.django_db
def test_needs_page_posts_the_selected_zones(congested, client, dso_user):
    product = ProductFactory(direction="up")
    session_for(product, congested["day"])
    client.force_login(dso_user)
    forecast_page = client.get(f"/grid/forecasts/{congested['run'].pk}/").content.decode()
    assert 'data-testid="review-needs"' in forecast_page
    url = f"/trading/needs/{congested['run'].pk}/"
    page = client.get(url).content.decode()
    assert 'data-testid="needs-table"' in page
    refused = client.post(url, {"product": product.pk, "price": "-1", "zones": [congested["zones"][0].pk]})
    assert refused.status_code == 400 and FlexRequest.objects.count() == 0
    done = client.post(url, {"product": product.pk, "price": "150", "zones": [congested["zones"][0].pk]})
    assert done.status_code == 302 and FlexRequest.objects.count() >= 1
    assert set(FlexRequest.objects.values_list("grid_location_id", flat=True)) == {congested["zones"][0].pk}
    assert np.isclose(
        sum(sum(r.quantities_kw) for r in FlexRequest.objects.all()),
        sum(
            sum(b["quantities_kw"])
            for b in selectors.forecast_need_blocks(congested["run"])
            if b["grid_location"] == congested["zones"][0].pk
        ),
    )


@pytest.mark.django_db
def test_posting_the_same_needs_twice_posts_once_and_names_the_open_requests(
    congested, actor_dso, client_for, dso_user
):
    product = ProductFactory(direction="up")
    session_for(product, congested["day"])
    body = {"forecast_run": congested["run"].pk, "product": product.pk, "price": "180"}
    first = client_for(dso_user).post("/api/v1/flex-requests/from-needs/", body, format="json")
    assert first.status_code == 201, first.content
    posted = sorted(r["id"] for r in first.json())
    again = client_for(dso_user).post("/api/v1/flex-requests/from-needs/", body, format="json")
    assert again.status_code == 400
    assert f"#{posted[0]}" in str(again.json()) and "already posted" in str(again.json())
    assert sorted(FlexRequest.objects.values_list("pk", flat=True)) == posted
    # Once the DSO cancels them, the same needs can be posted again.
    FlexRequest.objects.update(state="cancelled")
    assert len(
        requests_from_needs(actor=actor_dso, forecast_run=congested["run"], product=product, price=180)
    ) == len(posted)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_of_the_same_needs_post_once(congested, actor_dso):
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers anyway")
    product = ProductFactory(direction="up")
    session_for(product, congested["day"])
    barrier = threading.Barrier(2)
    outcomes = []

    def post():
        try:
            barrier.wait(timeout=10)
            outcomes.append(
                len(
                    requests_from_needs(
                        actor=actor_dso, forecast_run=congested["run"], product=product, price=180
                    )
                )
            )
        except DomainError as error:
            outcomes.append(error.message)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    blocks = [b for b in selectors.forecast_need_blocks(congested["run"]) if b["direction"] == "up"]
    assert sorted(outcomes, key=str)[0] == len(blocks)
    assert "already posted" in str(sorted(outcomes, key=str)[1])
    assert FlexRequest.objects.count() == len(blocks)
