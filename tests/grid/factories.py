"""Factories for grid objects: zones (square polygons around a point), assets, portfolios."""

from decimal import Decimal

import factory

from grid.ean import ean18_complete
from grid.models import FlexAsset, GridLocation, Portfolio
from tests.factories import OrganisationFactory


def square(lon: float, lat: float, half: float = 0.01) -> dict:
    """A closed GeoJSON polygon (counter-clockwise exterior ring) centred on lon/lat."""
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


class GridLocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GridLocation

    dso = factory.SubFactory(OrganisationFactory, roles=["DSO"])
    name = factory.Sequence(lambda n: f"Zone {n}")
    code = factory.Sequence(lambda n: f"ean.8710000000{n:05d}")
    voltage_level = GridLocation.VoltageLevel.MV
    geometry = factory.LazyAttribute(lambda o: square(5.12, 52.09))
    min_lon = factory.LazyAttribute(lambda o: min(p[0] for p in o.geometry["coordinates"][0]))
    min_lat = factory.LazyAttribute(lambda o: min(p[1] for p in o.geometry["coordinates"][0]))
    max_lon = factory.LazyAttribute(lambda o: max(p[0] for p in o.geometry["coordinates"][0]))
    max_lat = factory.LazyAttribute(lambda o: max(p[1] for p in o.geometry["coordinates"][0]))


class FlexAssetFactory(factory.django.DjangoModelFactory):
    """An approved battery inside its grid location (override `prequalification` for other states)."""

    class Meta:
        model = FlexAsset

    owner = factory.SubFactory(OrganisationFactory, roles=["ESP"])
    name = factory.Sequence(lambda n: f"Battery {n}")
    asset_type = FlexAsset.AssetType.BATTERY
    connection_ean = factory.Sequence(lambda n: ean18_complete(f"87100000000{n:06d}"))
    grid_location = factory.SubFactory(GridLocationFactory)
    latitude = factory.LazyAttribute(
        lambda o: (o.grid_location.min_lat + o.grid_location.max_lat) / 2 if o.grid_location else 52.0
    )
    longitude = factory.LazyAttribute(
        lambda o: (o.grid_location.min_lon + o.grid_location.max_lon) / 2 if o.grid_location else 5.0
    )
    max_up_kw = Decimal("500")
    max_down_kw = Decimal("500")
    energy_capacity_kwh = Decimal("1000")
    prequalification = FlexAsset.Prequalification.APPROVED


class PortfolioFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Portfolio
        skip_postgeneration_save = True

    owner = factory.SubFactory(OrganisationFactory, roles=["ESP"])
    grid_location = factory.SubFactory(GridLocationFactory)
    name = factory.Sequence(lambda n: f"Portfolio {n}")

    @factory.post_generation
    def assets(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.assets.set(extracted)
