"""Pages and forms speak the market's local time (Europe/Amsterdam here); storage and the API stay in UTC.
PTUs are picked by local clock time: both 02:xx of the autumn DST day, none of the missing spring hour."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from flexmarket.localtime import ptu_choices
from flexmarket.ptu import day_bounds_utc
from tests.trading.factories import ProductFactory, session_for
from trading.forms import RequestForm
from trading.models import FlexRequest, MarketSession

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SPRING, AUTUMN, WINTER = date(2027, 3, 28), date(2027, 10, 31), date(2027, 1, 12)


def _choices(day):
    return ptu_choices(*day_bounds_utc(day, "Europe/Amsterdam"), AMSTERDAM)


def test_ptu_choices_follow_the_clock_on_both_dst_days():
    spring, autumn, winter = _choices(SPRING), _choices(AUTUMN), _choices(WINTER)
    assert (len(spring), len(autumn), len(winter)) == (92, 100, 96)
    assert not [label for _, label in spring if label.startswith("02:")]
    assert [label for _, label in spring][7:9] == ["01:45 CET", "03:00 CEST"]
    twice = [(value, label) for value, label in autumn if label.startswith("02:15")]
    assert twice == [("2027-10-31T00:15:00+00:00", "02:15 CEST"), ("2027-10-31T01:15:00+00:00", "02:15 CET")]
    assert winter[68] == ("2027-01-12T16:00:00+00:00", "17:00 CET")


@pytest.fixture
def autumn_session(db, time_machine):
    time_machine.move_to(datetime(2027, 10, 29, 9, 0, tzinfo=UTC))
    return session_for(ProductFactory(), AUTUMN)


@pytest.mark.django_db
def test_the_second_0215_of_the_autumn_day_is_a_different_ptu(autumn_session, zone):
    data = {
        "grid_location": zone.pk,
        "session": autumn_session.pk,
        "ptu_count": 2,
        "quantity_kw": "100",
        "price": "80",
        "order_mode": "initiator",
    }
    sessions = MarketSession.objects.all()
    zones = type(zone).objects.all()
    first = RequestForm(data | {"ptu_start": "2027-10-31T00:15:00+00:00"}, sessions=sessions, zones=zones)
    second = RequestForm(data | {"ptu_start": "2027-10-31T01:15:00+00:00"}, sessions=sessions, zones=zones)
    assert first.is_valid() and second.is_valid(), (first.errors, second.errors)
    assert first.service_kwargs()["ptu_start"] == datetime(2027, 10, 31, 0, 15, tzinfo=UTC)
    assert second.service_kwargs()["ptu_start"] == datetime(2027, 10, 31, 1, 15, tzinfo=UTC)


@pytest.mark.django_db
def test_a_ptu_outside_the_sessions_day_is_a_form_error(autumn_session, zone):
    other = session_for(autumn_session.product, date(2027, 11, 1))
    form = RequestForm(
        {
            "grid_location": zone.pk,
            "session": autumn_session.pk,
            "ptu_start": f"{other.delivery_start.isoformat()}",
            "ptu_count": 1,
            "quantity_kw": "10",
            "price": "80",
            "order_mode": "initiator",
        },
        sessions=MarketSession.objects.all(),
        zones=type(zone).objects.all(),
    )
    assert not form.is_valid()
    assert form.errors["ptu_start"] == ["Choose a PTU of the session's delivery day (2027-10-31)."]


@pytest.mark.django_db
def test_request_page_posts_at_the_chosen_offset_and_the_answer_keeps_it(
    client, autumn_session, zone, dso_user, esp_user, asset
):
    client.force_login(dso_user)
    page = client.get("/trading/requests/").content.decode()
    assert '<option value="2027-10-31T00:15:00+00:00">02:15 CEST</option>' in page
    assert '<option value="2027-10-31T01:15:00+00:00">02:15 CET</option>' in page
    response = client.post(
        "/trading/requests/",
        {
            "grid_location": zone.pk,
            "session": autumn_session.pk,
            "ptu_start": "2027-10-31T01:15:00+00:00",
            "ptu_count": 4,
            "quantity_kw": "100",
            "price": "80",
            "order_mode": "initiator",
        },
    )
    assert response.status_code == 302
    posted = FlexRequest.objects.get()
    assert posted.ptu_start == datetime(2027, 10, 31, 1, 15, tzinfo=UTC)
    client.force_login(esp_user)
    answer = client.get(f"/trading/offers/?request={posted.pk}").content.decode()
    assert '<option value="2027-10-31T01:15:00+00:00" selected>02:15 CET</option>' in answer


@pytest.mark.django_db
def test_pages_show_local_time_with_its_zone_and_the_api_stays_utc(
    client, client_for, autumn_session, dso_user
):
    client.force_login(dso_user)
    listing = client.get("/trading/sessions/").content.decode()
    local = autumn_session.gate_closure.astimezone(AMSTERDAM)
    assert f"{local:%Y-%m-%d %H:%M} {local.tzname()}" in listing
    detail = client.get(f"/trading/sessions/{autumn_session.pk}/")
    labels = detail.context["ptu_labels"]
    assert len(labels) == 100 and labels.count("02:00 CEST") == labels.count("02:00 CET") == 1
    assert detail.context["ptu_label"] == "17:00 CET"
    body = client_for(dso_user).get(f"/api/v1/sessions/{autumn_session.pk}/").json()
    assert body["gate_closure"] == autumn_session.gate_closure.astimezone(UTC).isoformat().replace(
        "+00:00", "Z"
    )


@pytest.mark.django_db
def test_a_capability_refusal_names_the_ptu_in_local_time(autumn_session, actor_esp, esp_org, zone):
    """Messages people read (here the form/API error of an offer above the asset's capability) give the moment
    on the local clock with its zone: the second 02:15 of the autumn day is 02:15 CET, not 01:15 UTC."""
    from flexmarket.errors import DomainError
    from tests.grid.factories import FlexAssetFactory
    from trading import services

    asset = FlexAssetFactory(owner=esp_org, grid_location=zone, max_up_kw=100)
    with pytest.raises(DomainError) as refused:
        services.offer_submit(
            actor=actor_esp,
            asset=asset,
            product=autumn_session.product,
            ptu_start=datetime(2027, 10, 31, 1, 15, tzinfo=UTC),
            quantities_kw=[500.0],
            price=50,
        )
    assert "at 2027-10-31 02:15 CET is more than" in str(refused.value)
