"""A DSO goes from its congestion forecast to the needs and posts them as FlexRequests (issue 11 item 3)."""

import io
from zoneinfo import ZoneInfo

import pytest

from accounts.context import Actor
from flexmarket import ptu
from grid import network, services
from tests.browser.conftest import screenshot
from tests.trading.factories import ProductFactory, session_for, tomorrow
from trading.models import FlexRequest


@pytest.mark.django_db(transaction=True)
def test_dso_posts_requests_from_the_forecast_needs(page, login_as, dso_user, dso_org):
    actor = Actor(user=dso_user, organisation=dso_org)
    day = tomorrow()
    model = services.network_model_create(
        actor=actor, name="SimBench", example=network.SIMBENCH_PREFIX + network.DEMO_SIMBENCH_CODE
    )
    zones = services.grid_locations_from_feeders(
        actor=actor, network_model=model, name_prefix="Zuid", code_prefix="ean.needsflow"
    )
    local = ZoneInfo("Europe/Amsterdam")
    rows = [
        f",{zones[0].code},{s.isoformat()},9500,0"
        for s in ptu.ptu_starts(day, "Europe/Amsterdam")
        if 17 <= s.astimezone(local).hour < 21
    ]
    csv = "bus,zone,ptu_start,p_kw,q_kvar\n" + "\n".join(rows) + "\n"
    services.forecast_upload_csv(
        actor=actor, network_model=model, delivery_day=day, file=io.BytesIO(csv.encode())
    )
    run = services.forecast_run_request(actor=actor, network_model=model, delivery_day=day)
    run = services.forecast_run_execute(run_id=run.pk, prognoses=lambda **_: {})
    product = ProductFactory(name="Congestion relief", direction="up")
    session_for(product, day)

    login_as(dso_user)
    page.goto(f"/grid/forecasts/{run.pk}/")
    page.get_by_test_id("review-needs").click()
    table = page.get_by_test_id("needs-table")
    assert zones[0].name in table.inner_text()
    screenshot(page, "trading-forecast-needs")
    page.select_option("#needs-product", str(product.pk))
    page.fill("#needs-price", "180")
    page.get_by_test_id("post-needs").click()
    page.get_by_text("FlexRequest(s) posted from forecast").wait_for()
    posted = FlexRequest.objects.filter(grid_location=zones[0])
    assert posted.exists() and {r.external_id for r in posted} == {f"forecast-{run.pk}"}
    screenshot(page, "trading-requests-from-needs")
