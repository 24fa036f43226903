import pytest

from accounts import demo as accounts_demo
from grid import demo
from grid.models import FlexAsset, GridLocation, NetworkModel, Portfolio, ZoneBusMapping


@pytest.mark.django_db
def test_demo_seeds_zones_network_and_assets_once():
    cast = accounts_demo.seed()
    demo.seed(cast)
    counts = [m.objects.count() for m in (GridLocation, NetworkModel, ZoneBusMapping, FlexAsset, Portfolio)]
    assert GridLocation.objects.filter(dso=cast.organisations["dso_north"]).exists()
    assert GridLocation.objects.filter(dso=cast.organisations["dso_south"]).exists()
    assert counts[1] >= 1 and counts[2] >= 1 and counts[3] == 50 and counts[4] == 3
    pending = FlexAsset.objects.filter(prequalification=FlexAsset.Prequalification.PENDING)
    assert pending.exists() and FlexAsset.objects.filter(grid_location__isnull=True).count() == 0
    demo.seed(accounts_demo.seed())
    assert [
        m.objects.count() for m in (GridLocation, NetworkModel, ZoneBusMapping, FlexAsset, Portfolio)
    ] == counts
