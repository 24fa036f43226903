"""The audit trail cannot be altered, and every FMO edit in the admin is in it (issue 8, item 10)."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import IntegrityError, transaction
from django.forms import MultiWidget
from django.test import RequestFactory
from django.utils import timezone

from accounts.admin_audit import AuditedAdminMixin, ReadOnlyAdminMixin
from accounts.models import AuditEvent
from flexmarket.localtime import display_zone
from grid.models import PowerFlowRun
from settlement.models import (
    DeliveryVerification,
    Dispute,
    Invoice,
    SettlementPeriod,
    SettlementStatement,
    VerificationRun,
)
from tests.trading.factories import MarketFactory, ProductFactory, session_for, tomorrow
from trading.models import ClearingRun, Contract, MarketSession, Product

# --- the database refuses to alter audit rows (PostgreSQL) ---------------------------------------------


@pytest.fixture
def event(fmo_user, fmo_org):
    return AuditEvent.objects.create(actor=fmo_user, organisation=fmo_org, action="organisation.approve")


def refused(operation) -> bool:
    try:
        with transaction.atomic():
            operation()
    except IntegrityError as error:
        return "append-only" in str(error)
    return False


@pytest.mark.postgres
@pytest.mark.django_db
def test_base_manager_update_of_an_audit_event_is_refused(event):
    assert refused(lambda: AuditEvent._base_manager.filter(pk=event.pk).update(action="nothing.happened"))
    event.refresh_from_db()
    assert event.action == "organisation.approve"


@pytest.mark.postgres
@pytest.mark.django_db
def test_upsert_over_an_audit_event_is_refused(event):
    forged = AuditEvent(pk=event.pk, action="nothing.happened", organisation=event.organisation)
    assert refused(
        lambda: AuditEvent.objects.bulk_create(
            [forged], update_conflicts=True, unique_fields=["id"], update_fields=["action"]
        )
    )
    event.refresh_from_db()
    assert event.action == "organisation.approve"


@pytest.mark.postgres
@pytest.mark.django_db
def test_raw_delete_of_audit_events_is_refused(event):
    assert refused(lambda: AuditEvent.objects.filter(pk=event.pk)._raw_delete(using="default"))
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_new_audit_events_are_still_written(event):
    assert AuditEvent.objects.create(action="power_flow.result").pk > event.pk


# --- FMO edits in the admin are audit events ------------------------------------------------------------


@pytest.fixture
def admin_client(client, fmo_user):
    client.force_login(fmo_user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def change_form_data(obj, user, **changes) -> dict:
    """What the admin's change form posts for `obj` unchanged, with `changes` applied."""
    model_admin = admin.site._registry[type(obj)]
    request = RequestFactory().get("/")
    request.user = user
    with timezone.override(display_zone()):  # the admin renders its forms in local time, as the page would
        form = model_admin.get_form(request, obj, change=True)(instance=obj)
        data = _posted(form, changes)
    return data


def _posted(form, changes: dict) -> dict:
    data = {}
    for name, field in form.fields.items():
        value = changes.get(name, form[name].value())
        if isinstance(field.widget, MultiWidget):
            for index, part in enumerate(field.widget.decompress(value)):
                data[f"{name}_{index}"] = "" if part is None else str(part)
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value if isinstance(value, list) else str(value)
    return data


@pytest.mark.django_db
def test_a_product_fee_changed_in_the_admin_writes_an_audit_event(admin_client, fmo_user, fmo_org):
    product = ProductFactory(fee_eur_per_mwh=Decimal("0.50"))
    data = change_form_data(product, fmo_user, fee_eur_per_mwh="0.75")
    response = admin_client.post(f"/admin/trading/product/{product.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="admin.change")
    assert (event.actor, event.organisation, event.object_type) == (fmo_user, fmo_org, "trading.Product")
    assert event.object_id == str(product.pk)
    assert (event.before, event.after) == ({"fee_eur_per_mwh": "0.5000"}, {"fee_eur_per_mwh": "0.7500"})


@pytest.mark.django_db
def test_a_session_reopened_in_the_admin_writes_an_audit_event(admin_client, fmo_user):
    session = session_for(ProductFactory(), tomorrow(), state=MarketSession.State.CLEARED)
    data = change_form_data(session, fmo_user, state="open")
    response = admin_client.post(f"/admin/trading/marketsession/{session.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="admin.change", object_type="trading.MarketSession")
    assert (event.before, event.after) == ({"state": "cleared"}, {"state": "open"})


@pytest.mark.django_db
def test_saving_an_unchanged_form_writes_no_event(admin_client, fmo_user):
    product = ProductFactory()
    admin_client.post(f"/admin/trading/product/{product.pk}/change/", change_form_data(product, fmo_user))
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


@pytest.mark.django_db
def test_an_inline_edit_is_audited_on_the_inline_object(admin_client, fmo_user):
    market = MarketFactory()
    product = ProductFactory(market=market, fee_eur_per_mwh=Decimal("0.50"))
    inline = change_form_data(product, fmo_user, fee_eur_per_mwh="2.00")
    data = change_form_data(market, fmo_user) | {
        "products-TOTAL_FORMS": "1",
        "products-INITIAL_FORMS": "1",
        "products-0-id": str(product.pk),
        "products-0-market": str(market.pk),
    }
    data |= {f"products-0-{name}": value for name, value in inline.items() if name != "market"}
    response = admin_client.post(f"/admin/trading/market/{market.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(action="admin.change")
    assert (event.object_type, event.object_id) == ("trading.Product", str(product.pk))
    assert (event.before, event.after) == ({"fee_eur_per_mwh": "0.5000"}, {"fee_eur_per_mwh": "2.0000"})


@pytest.mark.django_db
def test_an_object_added_and_deleted_in_the_admin_is_audited(admin_client, fmo_user):
    market = MarketFactory()
    product = ProductFactory(market=market)
    data = change_form_data(product, fmo_user, code="new-product", name="New product")
    data.pop("id", None)
    response = admin_client.post("/admin/trading/product/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    added = Product.objects.get(code="new-product")
    event = AuditEvent.objects.get(action="admin.add")
    assert event.object_id == str(added.pk) and event.after["code"] == "new-product"
    response = admin_client.post(f"/admin/trading/product/{added.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    deleted = AuditEvent.objects.get(action="admin.delete")
    assert deleted.object_id == str(added.pk) and deleted.before["name"] == "New product"


@pytest.mark.django_db
def test_a_bulk_delete_from_the_list_is_audited_per_object(admin_client):
    products = [ProductFactory(), ProductFactory()]
    response = admin_client.post(
        "/admin/trading/product/",
        {"action": "delete_selected", "_selected_action": [p.pk for p in products], "post": "yes"},
    )
    assert response.status_code == 302
    assert sorted(
        AuditEvent.objects.filter(action="admin.delete").values_list("object_id", flat=True)
    ) == sorted(str(p.pk) for p in products)


def test_every_admin_class_is_audited_including_third_party_ones():
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdminMixin)
    ]
    assert unaudited == []
    assert "django_celery_beat.PeriodicTask" in {model._meta.label for model in admin.site._registry}


@pytest.mark.django_db
def test_secrets_are_masked_in_admin_audit_events(admin_client, fmo_user):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {"email": "new@fmo.example", "password1": "a-Long-pass-123", "password2": "a-Long-pass-123"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="admin.add", object_type="accounts.User")
    assert event.after["password"] == "(hidden)" and event.after["email"] == "new@fmo.example"


# --- records that services write are read-only in the admin ---------------------------------------------

READ_ONLY = [
    Contract,
    ClearingRun,
    Invoice,
    SettlementStatement,
    SettlementPeriod,
    DeliveryVerification,
    Dispute,
    PowerFlowRun,
    VerificationRun,
]


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m._meta.label)
def test_the_fmo_cannot_add_change_or_delete_service_records_in_the_admin(model, rf, fmo_user):
    model_admin = admin.site._registry[model]
    request = rf.get("/")
    request.user = fmo_user  # a superuser: only the admin class itself can refuse
    assert isinstance(model_admin, ReadOnlyAdminMixin)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)


def test_statement_lines_cannot_be_edited_through_their_statement(rf, fmo_user):
    from settlement.admin import LineInline

    inline = LineInline(SettlementStatement, admin.site)
    request = rf.get("/")
    request.user = fmo_user
    assert not inline.has_add_permission(request, None)
    assert not inline.has_change_permission(request) and not inline.has_delete_permission(request)


@pytest.mark.django_db
def test_contract_pages_refuse_adding_changing_and_deleting(admin_client, settled_setup):
    contract = settled_setup["contract"]
    assert admin_client.get("/admin/trading/contract/add/").status_code == 403
    assert admin_client.get(f"/admin/trading/contract/{contract.pk}/change/").status_code == 200  # view only
    assert (
        admin_client.post(
            f"/admin/trading/contract/{contract.pk}/change/", {"state": "cancelled"}
        ).status_code
        == 403
    )
    assert (
        admin_client.post(f"/admin/trading/contract/{contract.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    contract.refresh_from_db()
    assert contract.state == Contract.State.ACTIVE
