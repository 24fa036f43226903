"""The settlement demo on top of the other apps' demos, at a frozen time: no reading of the future, money conserved,
and yesterday's period (wholly in the past, every contract verified) locked and invoiced."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts import demo as accounts_demo
from flexmarket import ptu
from grid import demo as grid_demo
from settlement import demo as settlement_demo
from settlement.models import (
    BaselineAccuracy,
    DeliveryVerification,
    Invoice,
    SettlementPeriod,
    SettlementStatement,
)
from tests.settlement.readings import readings_all
from trading import demo as trading_demo

MORNING = datetime(2026, 6, 10, 8, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))


@pytest.fixture
def traded_this_morning():
    with time_machine.travel(MORNING, tick=False):
        cast = accounts_demo.seed()
        grid_demo.seed(cast)
        trading_demo.seed(cast)
    return cast


@pytest.mark.django_db
def test_the_demo_in_the_morning_settles_yesterday_and_reads_no_future(traded_this_morning):
    with time_machine.travel(MORNING + timedelta(minutes=5), tick=False):
        settlement_demo.seed(traded_this_morning)
    latest = max(moment for _, _, moment in readings_all())
    assert latest + ptu.PTU <= MORNING + timedelta(minutes=5)
    verified = DeliveryVerification.objects.filter(state="verified")
    assert verified.exists() and any("partial" in v.status for v in verified)  # every fourth under-delivers
    period = SettlementPeriod.objects.get()
    assert period.start == period.end == MORNING.date() - timedelta(days=1)
    assert period.state == "locked"
    assert Invoice.objects.count() == SettlementStatement.objects.count() > 0
    assert BaselineAccuracy.objects.filter(method="temperature", samples__gt=0).exists()
    # Summed in Python: SQLite's SUM of a decimal column is a float sum (−1.4e-14 is not a lost cent).
    totals = SettlementStatement.objects.values_list("total_eur", flat=True)
    assert sum(totals, Decimal(0)) == Decimal("0.00")
