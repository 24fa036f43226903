"""A small market for the hardening tests: one DSO zone, one approved ESP asset, an open auction session."""

from datetime import timedelta

import pytest

from tests.grid.factories import FlexAssetFactory, GridLocationFactory
from tests.trading.factories import ProductFactory, session_for, tomorrow


@pytest.fixture
def zone(dso_org):
    return GridLocationFactory(dso=dso_org)


@pytest.fixture
def asset(esp_org, zone):
    return FlexAssetFactory(owner=esp_org, grid_location=zone)


@pytest.fixture
def product(db):
    return ProductFactory()


@pytest.fixture
def session(product):
    return session_for(product, tomorrow())


@pytest.fixture
def ptu17(session):
    return session.delivery_start + timedelta(hours=17)
