import io
from decimal import Decimal

import pytest

from flexmarket.errors import DomainError, ValidationErrors
from grid import services
from grid.models import FlexAsset, GridLocation, Portfolio, PrequalificationCheck
from tests.grid.factories import FlexAssetFactory, GridLocationFactory, square

UTRECHT = (5.12, 52.09)


def zone(actor, code="ean.871000000000000001", geometry=None, name="Centrum"):
    return services.grid_location_create(
        actor=actor, name=name, code=code, geometry=geometry or square(*UTRECHT)
    )


def asset_fields(lon=UTRECHT[0], lat=UTRECHT[1], **overrides):
    data = {
        "name": "Battery A",
        "asset_type": "battery",
        "connection_ean": "871000000000000129",
        "latitude": lat,
        "longitude": lon,
        "max_up_kw": "250",
        "max_down_kw": "250",
        "energy_capacity_kwh": "500",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_dso_creates_zone_with_bounds(actor_dso):
    created = zone(actor_dso)
    assert created.dso == actor_dso.organisation
    assert (created.min_lon, created.max_lat) == pytest.approx((5.11, 52.10))
    assert created.warnings == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (
            {
                "type": "Polygon",
                "coordinates": [[[5.0, 52.0], [5.1, 52.1], [5.1, 52.0], [5.0, 52.1], [5.0, 52.0]]],
            },
            "Self-intersection",
        ),
        (
            {"type": "Polygon", "coordinates": [[[5.0, 52.0], [5.1, 52.0], [5.1, 52.1], [5.0, 52.1]]]},
            "not closed",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[52.0, 5.0], [52.0, 5.1], [52.1, 5.1], [52.1, 5.0], [52.0, 5.0]]],
            },
            "[longitude, latitude]",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[190, 52.0], [191, 52.0], [191, 53], [190, 53], [190, 52.0]]],
            },
            "outside WGS84",
        ),
        ({"type": "Point", "coordinates": [5.0, 52.0]}, "Polygon or MultiPolygon"),
    ],
    ids=["bowtie", "open-ring", "swapped-order", "out-of-bounds", "not-a-polygon"],
)
def test_invalid_polygons_are_refused_with_a_message(actor_dso, geometry, message):
    with pytest.raises(DomainError) as error:
        zone(actor_dso, geometry=geometry)
    assert message in error.value.message
    assert error.value.field == "geometry"
    assert not GridLocation.objects.exists()


@pytest.mark.django_db
def test_overlap_with_own_zone_is_refused_but_other_dso_only_warns(actor_dso, actor_dso2):
    zone(actor_dso)
    with pytest.raises(DomainError) as error:
        zone(actor_dso, code="ean.2", geometry=square(UTRECHT[0] + 0.005, UTRECHT[1]))
    assert "overlaps your zone" in error.value.message
    other = zone(actor_dso2, code="ean.3", geometry=square(UTRECHT[0] + 0.005, UTRECHT[1]))
    assert other.warnings and "Stedin" in other.warnings[0]


@pytest.mark.django_db
def test_only_dsos_create_zones(actor_esp):
    with pytest.raises(DomainError):
        zone(actor_esp)


@pytest.mark.django_db
def test_geojson_import_is_all_or_nothing_with_feature_errors(actor_dso):
    good = {"type": "Feature", "properties": {"name": "A", "code": "ean.a"}, "geometry": square(5.0, 52.0)}
    bad = {
        "type": "Feature",
        "properties": {"name": "B", "code": "ean.b"},
        "geometry": {"type": "Polygon", "coordinates": [[[5, 52], [5.1, 52]]]},
    }
    with pytest.raises(ValidationErrors) as error:
        services.grid_locations_import_geojson(
            actor=actor_dso, data={"type": "FeatureCollection", "features": [good, bad]}
        )
    assert error.value.errors == [
        {"row": 2, "field": "geometry", "message": error.value.errors[0]["message"]}
    ]
    assert not GridLocation.objects.exists()
    zones = services.grid_locations_import_geojson(
        actor=actor_dso, data={"type": "FeatureCollection", "features": [good]}
    )
    assert [z.code for z in zones] == ["ean.a"]


@pytest.mark.django_db
def test_geojson_export_round_trips(actor_dso):
    created = zone(actor_dso)
    collection = services.grid_locations_as_geojson([created])
    assert collection["features"][0]["geometry"] == created.geometry
    assert collection["features"][0]["properties"]["code"] == created.code


@pytest.mark.django_db
def test_asset_lands_in_the_zone_containing_it(actor_dso, actor_esp):
    centrum = zone(actor_dso)
    asset = services.asset_register(actor=actor_esp, **asset_fields())
    assert asset.grid_location == centrum
    assert asset.prequalification == FlexAsset.Prequalification.PENDING
    outside = services.asset_register(
        actor=actor_esp, **asset_fields(lon=6.5, lat=53.2, connection_ean="871000000000000990")
    )
    assert outside.grid_location is None and not outside.can_trade


@pytest.mark.django_db
def test_asset_on_a_shared_border_goes_to_the_lowest_zone_id(actor_dso, actor_dso2):
    # Binary-exact coordinates so the shared edge is exactly x = 5.25.
    west = zone(actor_dso, code="ean.w", geometry=square(5.0, 52.0, half=0.25))
    east = zone(actor_dso2, code="ean.e", geometry=square(5.5, 52.0, half=0.25))
    from accounts.context import Actor
    from tests.factories import OrganisationFactory, member_of

    esp = OrganisationFactory(roles=["ESP"])
    actor = Actor(user=member_of(esp), organisation=esp)
    on_border = services.asset_register(actor=actor, **asset_fields(lon=5.25, lat=52.0))
    assert on_border.grid_location_id == min(west.pk, east.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"connection_ean": "123"}, "connection_ean"),
        ({"asset_type": "nuclear"}, "asset_type"),
        ({"max_up_kw": "-5"}, "max_up_kw"),
        ({"latitude": "95"}, "latitude"),
        ({"energy_capacity_kwh": ""}, "energy_capacity_kwh"),
    ],
)
def test_bad_asset_input_is_refused(actor_esp, overrides, field):
    with pytest.raises(DomainError) as error:
        services.asset_register(actor=actor_esp, **asset_fields(**overrides))
    assert error.value.field == field
    assert not FlexAsset.objects.exists()


@pytest.mark.django_db
def test_csv_import_is_all_or_nothing_with_row_errors(actor_esp):
    header = ",".join(services.ASSET_CSV_COLUMNS)
    good = "B1,battery,871000000000000006,52.09,5.12,100,100,200,"
    bad = "B2,battery,12,52.09,5.12,100,100,200,"
    with pytest.raises(ValidationErrors) as error:
        services.assets_import_csv(actor=actor_esp, file=io.StringIO(f"{header}\n{good}\n{bad}\n"))
    assert error.value.errors[0]["row"] == 3 and error.value.errors[0]["field"] == "connection_ean"
    assert not FlexAsset.objects.exists()
    assets = services.assets_import_csv(actor=actor_esp, file=io.StringIO(f"{header}\n{good}\n"))
    assert len(assets) == 1


@pytest.mark.django_db
def test_zone_dso_prequalifies_and_the_esp_is_told(actor_dso, actor_dso2, actor_esp):
    zone(actor_dso)
    asset = services.asset_register(actor=actor_esp, **asset_fields())
    with pytest.raises(DomainError):
        services.asset_prequalify(actor=actor_dso2, asset=asset, decision="approve")
    with pytest.raises(DomainError) as error:
        services.asset_prequalify(actor=actor_dso, asset=asset, decision="reject")
    assert error.value.field == "reason"
    services.asset_checklist_update(
        actor=actor_dso, asset=asset, checked=list(PrequalificationCheck.MANDATORY)
    )
    services.asset_prequalify(actor=actor_dso, asset=asset, decision="approve")
    asset.refresh_from_db()
    assert asset.can_trade
    services.asset_prequalify(
        actor=actor_dso, asset=asset, decision="suspend", reason="Failed activation test"
    )
    asset.refresh_from_db()
    assert asset.prequalification == "suspended" and not asset.can_trade
    assert actor_esp.organisation.notifications.filter(title__icontains="suspended").exists()


@pytest.mark.django_db
def test_portfolio_groups_approved_assets_of_one_zone(actor_esp):
    centrum = GridLocationFactory()
    a = FlexAssetFactory(owner=actor_esp.organisation, grid_location=centrum, max_up_kw=Decimal("100"))
    b = FlexAssetFactory(owner=actor_esp.organisation, grid_location=centrum, max_up_kw=Decimal("50"))
    portfolio = services.portfolio_create(actor=actor_esp, name="Centrum pool", assets=[a, b])
    assert services.portfolio_capabilities(portfolio)["max_up_kw"] == Decimal("150")
    elsewhere = FlexAssetFactory(owner=actor_esp.organisation)
    with pytest.raises(DomainError):
        services.portfolio_create(actor=actor_esp, name="Mixed", assets=[a, elsewhere])
    pending = FlexAssetFactory(
        owner=actor_esp.organisation, grid_location=centrum, prequalification="pending"
    )
    with pytest.raises(DomainError):
        services.portfolio_create(actor=actor_esp, name="Pending", assets=[pending])
    assert Portfolio.objects.count() == 1


@pytest.mark.django_db
def test_archiving_a_zone_unplaces_its_assets(actor_dso, actor_esp):
    centrum = zone(actor_dso)
    asset = services.asset_register(actor=actor_esp, **asset_fields())
    services.grid_location_archive(actor=actor_dso, grid_location=centrum)
    asset.refresh_from_db()
    assert asset.grid_location is None


@pytest.mark.django_db
def test_availability_windows_from_text_or_json(actor_esp):
    asset = services.asset_register(
        actor=actor_esp, **asset_fields(availability="mon-fri 07:00-22:00; sat 09:00-13:00")
    )
    assert asset.availability == [
        {"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "22:00"},
        {"days": [5], "start": "09:00", "end": "13:00"},
    ]
    assert asset.availability_text == "mon-fri 07:00-22:00; sat 09:00-13:00"
    windows = [{"days": [6], "start": "00:00", "end": "24:00"}]
    assert services.availability_clean(windows) == windows


@pytest.mark.django_db
@pytest.mark.parametrize(
    "availability",
    ["weekdays 07:00-22:00", "fri-mon 07:00-22:00", "mon 22:00-07:00", "mon 7-22", [{"days": [7]}], "x"],
)
def test_bad_availability_is_refused(actor_esp, availability):
    with pytest.raises(DomainError) as error:
        services.asset_register(actor=actor_esp, **asset_fields(availability=availability))
    assert error.value.field == "availability"
    assert not FlexAsset.objects.exists()


@pytest.mark.django_db
def test_csv_availability_column_is_optional_and_checked(actor_esp):
    header = ",".join(services.ASSET_CSV_COLUMNS)
    good = "B1,battery,871000000000000006,52.09,5.12,100,100,200,,mon-fri 07:00-22:00"
    bad = "B2,battery,871000000000000006,52.09,5.12,100,100,200,,sun 23:00-01:00"
    with pytest.raises(ValidationErrors) as error:
        services.assets_import_csv(actor=actor_esp, file=io.StringIO(f"{header}\n{good}\n{bad}\n"))
    assert error.value.errors[0]["row"] == 3 and error.value.errors[0]["field"] == "availability"
    assert not FlexAsset.objects.exists()
    (asset,) = services.assets_import_csv(actor=actor_esp, file=io.StringIO(f"{header}\n{good}\n"))
    assert asset.availability[0]["days"] == [0, 1, 2, 3, 4]


@pytest.mark.django_db
def test_a_new_zone_tells_the_market_operator_to_list_it(actor_dso, fmo_org, esp_org):
    from accounts.models import Notification

    created = zone(actor_dso, name="Nieuw-West")
    told = Notification.objects.get(organisation=fmo_org)
    assert (
        told.title.startswith(f"New zone Nieuw-West ({created.code}) by ")
        and told.link == "/admin/trading/market/"
    )
    assert not Notification.objects.filter(organisation=esp_org).exists()
