"""The settlement demo on top of the other apps' demos, at frozen times: no reading of the future, money conserved,
and the day's period locked only once the day is over and verified."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db.models import Max, Sum

from accounts import demo as accounts_demo
from accounts.context import Actor
from flexmarket import ptu
from grid import demo as grid_demo
from settlement import demo as settlement_demo
from settlement import services
from settlement.models import (
    DeliveryVerification,
    Invoice,
    MeterReading,
    SettlementPeriod,
    SettlementStatement,
)
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
def test_the_demo_in_the_morning_reads_no_future_and_waits_for_the_evening(traded_this_morning):
    with time_machine.travel(MORNING + timedelta(minutes=5), tick=False):
        settlement_demo.seed(traded_this_morning)
    latest = MeterReading.objects.aggregate(latest=Max("ptu_start"))["latest"]
    assert latest + ptu.PTU <= MORNING + timedelta(minutes=5)
    assert not DeliveryVerification.objects.filter(state="verified").exists()
    period = SettlementPeriod.objects.get()
    assert period.state == "approved" and not Invoice.objects.exists()


@pytest.mark.django_db
def test_the_demo_late_in_the_evening_verifies_and_locks_after_midnight(traded_this_morning):
    late = MORNING.replace(hour=23, minute=50)
    with time_machine.travel(late, tick=False):
        settlement_demo.seed(traded_this_morning)
    assert DeliveryVerification.objects.filter(state="verified").exists()
    verified = DeliveryVerification.objects.filter(state="verified")
    assert any("partial" in v.status for v in verified)  # every fourth contract under-delivers
    period = SettlementPeriod.objects.get()
    assert period.state == "approved"  # the day is not over until midnight
    assert SettlementStatement.objects.aggregate(total=Sum("total_eur"))["total"] == Decimal("0.00")
    fmo = Actor(user=traded_this_morning.users["fmo"], organisation=traded_this_morning.organisations["fmo"])
    with time_machine.travel(late + timedelta(minutes=15), tick=False):
        services.period_lock(actor=fmo, period=period)
    assert Invoice.objects.count() == SettlementStatement.objects.count() > 0
