import pytest

from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow


@pytest.fixture
def zone(dso_org):
    return GridLocationFactory(dso=dso_org)


@pytest.fixture
def product(db):
    return ProductFactory()


@pytest.fixture
def continuous_product(db):
    from trading.models import Product

    return ProductFactory(clearing_rule=Product.ClearingRule.CONTINUOUS, code="cont", name="Continuous up")


@pytest.fixture
def session(product):
    return session_for(product, tomorrow())


@pytest.fixture
def continuous_session(continuous_product):
    return session_for(continuous_product, tomorrow())


@pytest.fixture
def asset(esp_org, zone):
    return FlexAssetFactory(owner=esp_org, grid_location=zone)


@pytest.fixture
def asset2(esp2_org, zone):
    return FlexAssetFactory(owner=esp2_org, grid_location=zone)


@pytest.fixture
def ptu17(session):
    """17:00 local on the delivery day (index 68 on a normal day)."""
    from datetime import timedelta

    return session.delivery_start + timedelta(hours=17)
