"""`manage.py demo` loads at any clock time, on both DST days, and a second run changes nothing (issue 8.2)."""

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from flexmarket import ptu
from settlement.models import Invoice, SettlementPeriod
from trading import demo as trading_demo
from trading.models import ClearingRunNetwork, Contract, FlexOffer, FlexRequest, MarketSession

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MOMENTS = {
    "morning": datetime(2026, 11, 18, 8, 0, tzinfo=AMSTERDAM),
    "after noon": datetime(2026, 11, 18, 13, 30, tzinfo=AMSTERDAM),
    "before midnight": datetime(2026, 11, 18, 23, 50, tzinfo=AMSTERDAM),
    "spring DST day": datetime(2026, 3, 29, 13, 30, tzinfo=AMSTERDAM),
    "autumn DST day, repeated hour": datetime(2026, 10, 25, 2, 30, tzinfo=AMSTERDAM),
}


def run_demo(*args) -> str:
    out = StringIO()
    call_command("demo", "--no-serve", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("moment", list(MOMENTS.values()), ids=list(MOMENTS))
def test_demo_loads_at_any_hour(moment, time_machine):
    time_machine.move_to(moment)
    assert "Demo data loaded." in run_demo()
    today = moment.date()
    auction = MarketSession.objects.filter(product__code="cm-up")
    yesterday = auction.get(delivery_day=today - timedelta(days=1))
    assert yesterday.state == MarketSession.State.CLEARED
    assert Contract.objects.filter(session__delivery_day=today, state="active").exists()
    open_session = (
        auction.filter(state=MarketSession.State.OPEN, gate_closure__gt=moment)
        .order_by("delivery_day")
        .first()
    )
    assert FlexOffer.objects.filter(session=open_session, state="active").exists()
    assert FlexRequest.objects.filter(session=open_session, state="active").exists()
    assert open_session.delivery_day == today + timedelta(days=1 if moment.hour < 12 else 2)
    period = SettlementPeriod.objects.get()
    assert period.state == SettlementPeriod.State.LOCKED and period.start == today - timedelta(days=1)
    assert Invoice.objects.filter(statement__period=period).exists()
    assert_network_session_priced_across_a_binding_line(today + timedelta(days=1))
    assert (
        ptu.ptu_count(today, "Europe/Amsterdam")
        == auction.get(delivery_day=today).delivery_end.__sub__(
            auction.get(delivery_day=today).delivery_start
        )
        / ptu.PTU
    )


def assert_network_session_priced_across_a_binding_line(day) -> None:
    """Tomorrow's network-aware session is cleared on Zuidnet's grid: in a PTU with accepted orders a line binds
    and the buses on its two sides have different D-LMPs (feeder 1's dear offer, feeder 2's cheap one)."""
    session = MarketSession.objects.get(product__code="cm-network", delivery_day=day)
    assert session.state == MarketSession.State.CLEARED
    network = ClearingRunNetwork.objects.get(run__session=session, run__state="succeeded")
    priced_and_bound = [
        t
        for t, limits in network.binding.items()
        if any(limit["kind"] == "line" for limit in limits)
        and len({row[int(t)] for row in network.dlmp if row[int(t)] is not None}) >= 2
    ]
    assert priced_and_bound
    prices = [
        row[int(priced_and_bound[0])] for row in network.dlmp if row[int(priced_and_bound[0])] is not None
    ]
    cheap, dear = sorted(trading_demo.NETWORK_OFFERS.values())
    assert min(prices) == pytest.approx(float(cheap), abs=0.1)
    assert max(prices) == pytest.approx(float(dear), abs=0.5)
    assert Contract.objects.filter(session=session).count() >= 2
    # Feeder 1's offers carry a reactive range; the run stores a Q-LMP wherever it found a D-LMP.
    assert FlexOffer.objects.filter(
        session=session, q_price=trading_demo.NETWORK_REACTIVE["ean.zuid.f1"][1]
    ).exists()
    t = int(priced_and_bound[0])
    assert all((q[t] is None) == (d[t] is None) for q, d in zip(network.qlmp, network.dlmp, strict=True))


@pytest.mark.django_db(
    transaction=True
)  # --reset empties the database with TRUNCATE, outside any transaction
def test_second_run_changes_nothing_and_reset_loads_afresh(time_machine):
    time_machine.move_to(MOMENTS["after noon"])
    run_demo()
    counts = (Contract.objects.count(), FlexOffer.objects.count(), Invoice.objects.count())
    assert "already loaded" in run_demo()
    assert (Contract.objects.count(), FlexOffer.objects.count(), Invoice.objects.count()) == counts
    Contract.objects.update(state=Contract.State.CANCELLED)  # a changed world that --reset must replace
    assert "Demo data loaded." in run_demo("--reset")
    assert (Contract.objects.count(), FlexOffer.objects.count(), Invoice.objects.count()) == counts
    assert not Contract.objects.filter(state=Contract.State.CANCELLED).exists()
