"""The DSO's prequalification checklist: ticks are stamped and audited, approval needs every mandatory item."""

import pytest

from accounts.models import AuditEvent
from flexmarket.errors import DomainError
from grid import services
from grid.models import PrequalificationCheck
from grid.selectors import asset_checklist
from tests.grid.factories import FlexAssetFactory, GridLocationFactory, square

MANDATORY = [str(item) for item in PrequalificationCheck.MANDATORY]


@pytest.fixture
def asset(dso_org, esp_org):
    return FlexAssetFactory(
        owner=esp_org, grid_location=GridLocationFactory(dso=dso_org), prequalification="pending"
    )


@pytest.mark.django_db
def test_approval_without_the_mandatory_items_is_refused_and_names_them(actor_dso, asset):
    services.asset_checklist_update(actor=actor_dso, asset=asset, checked=MANDATORY[:3])
    with pytest.raises(DomainError) as error:
        services.asset_prequalify(actor=actor_dso, asset=asset, decision="approve")
    assert error.value.code == "checklist_incomplete"
    assert error.value.extra["missing"] == ["location", "dispatch_test"]
    assert "Communication and dispatch test passed" in error.value.message
    asset.refresh_from_db()
    assert asset.prequalification == "pending"


@pytest.mark.django_db
def test_the_optional_item_is_not_needed_to_approve(actor_dso, asset):
    services.asset_checklist_update(actor=actor_dso, asset=asset, checked=MANDATORY)
    assert services.asset_prequalify(actor=actor_dso, asset=asset, decision="approve").can_trade


@pytest.mark.django_db
def test_reject_needs_no_checklist(actor_dso, asset):
    rejected = services.asset_prequalify(actor=actor_dso, asset=asset, decision="reject", reason="No meter")
    assert rejected.prequalification == "rejected"


@pytest.mark.django_db
def test_a_tick_is_stamped_with_who_and_when_and_audited(actor_dso, asset, time_machine):
    time_machine.move_to("2026-12-01T10:00:00Z")
    services.asset_checklist_update(
        actor=actor_dso, asset=asset, checked=["metering"], notes={"metering": " P4 smart meter "}
    )
    time_machine.move_to("2026-12-02T10:00:00Z")
    checks = services.asset_checklist_update(
        actor=actor_dso, asset=asset, checked=["metering", "connection"], notes={"metering": "P4 smart meter"}
    )
    by_item = {check.item: check for check in checks}
    assert [check.item for check in checks] == list(PrequalificationCheck.Item.values)
    assert by_item["metering"].note == "P4 smart meter"
    assert (
        by_item["metering"].checked_at.isoformat() == "2026-12-01T10:00:00+00:00"
    )  # unchanged: not re-stamped
    assert by_item["connection"].checked_by == actor_dso.user
    assert by_item["connection"].checked_at.isoformat() == "2026-12-02T10:00:00+00:00"
    assert by_item["capacity"].pk is None and not by_item["capacity"].checked
    assert AuditEvent.objects.filter(action="asset.checklist").count() == 2


@pytest.mark.django_db
def test_unticking_keeps_the_row_and_blocks_approval_again(actor_dso, asset):
    services.asset_checklist_update(actor=actor_dso, asset=asset, checked=MANDATORY)
    services.asset_checklist_update(actor=actor_dso, asset=asset, checked=MANDATORY[1:])
    assert not asset_checklist(asset)[0].checked and asset_checklist(asset)[0].checked_at is not None
    with pytest.raises(DomainError):
        services.asset_prequalify(actor=actor_dso, asset=asset, decision="approve")


@pytest.mark.django_db
def test_only_the_zone_dso_keeps_the_checklist(actor_dso2, actor_esp, asset):
    for actor in (actor_dso2, actor_esp):
        with pytest.raises(DomainError):
            services.asset_checklist_update(actor=actor, asset=asset, checked=MANDATORY)
    assert not PrequalificationCheck.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("checked", "notes", "field"),
    [(["wiring"], {}, "checked"), ([], {"metering": "x" * 501}, "notes")],
)
def test_bad_checklist_input_is_refused_and_nothing_written(actor_dso, asset, checked, notes, field):
    with pytest.raises(DomainError) as error:
        services.asset_checklist_update(actor=actor_dso, asset=asset, checked=checked, notes=notes)
    assert error.value.field == field
    assert not PrequalificationCheck.objects.exists()


@pytest.mark.django_db
def test_the_esp_sees_the_checklist_on_its_asset_page(client, esp_user, actor_dso, asset):
    services.asset_checklist_update(
        actor=actor_dso, asset=asset, checked=["metering"], notes={"metering": "P4 smart meter"}
    )
    client.force_login(esp_user)
    page = client.get(f"/grid/assets/{asset.pk}/").content.decode()
    assert "P4 smart meter" in page and "Metering adequate for M&amp;V" in page
    assert 'name="checked"' not in page  # read-only for the owner


@pytest.mark.django_db
def test_the_dso_saves_the_checklist_from_the_asset_page(client, dso_user, asset):
    client.force_login(dso_user)
    response = client.post(
        f"/grid/prequalification/{asset.pk}/checklist/",
        {"checked": MANDATORY, "note_location": "Checked on site"},
    )
    assert response.status_code == 302
    assert {c.item for c in asset.prequalification_checks.filter(checked=True)} == set(MANDATORY)
    queue = client.get("/grid/prequalification/").content.decode()
    assert "5 / 5 required" in queue


@pytest.mark.django_db
def test_another_dso_cannot_post_the_checklist(client, dso2_user, asset):
    client.force_login(dso2_user)
    assert (
        client.post(f"/grid/prequalification/{asset.pk}/checklist/", {"checked": MANDATORY}).status_code
        == 404
    )
    assert not PrequalificationCheck.objects.exists()


@pytest.mark.django_db
def test_the_admin_shows_the_checklist(admin_client, actor_dso, asset):
    services.asset_checklist_update(actor=actor_dso, asset=asset, checked=["metering"])
    assert (
        "Metering adequate" in admin_client.get(f"/admin/grid/flexasset/{asset.pk}/change/").content.decode()
    )
    assert admin_client.get("/admin/grid/prequalificationcheck/").status_code == 200


@pytest.mark.django_db
def test_an_asset_that_leaves_the_zone_loses_its_checklist(actor_dso, esp_org):
    zone = services.grid_location_create(
        actor=actor_dso, name="Nord", code="ean.1", geometry=square(5.12, 52.09)
    )
    asset = FlexAssetFactory(owner=esp_org, grid_location=zone, longitude=5.12, latitude=52.09)
    services.asset_checklist_update(actor=actor_dso, asset=asset, checked=MANDATORY)
    services.asset_prequalify(actor=actor_dso, asset=asset, decision="approve")
    services.grid_location_update(actor=actor_dso, grid_location=zone, geometry=square(5.5, 52.5))
    asset.refresh_from_db()
    assert asset.grid_location is None and asset.prequalification == "pending"
    assert not asset.prequalification_checks.exists()
