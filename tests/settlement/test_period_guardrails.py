"""Settlement guardrails: a consequential step is confirmed on a page that states what it will do, and the
service refuses what an FMO must not do (unbalanced statements, stale approvals, re-verifying signed-off figures
without a reason)."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.models import AuditEvent
from flexmarket.errors import DomainError
from settlement import services
from settlement.models import SettlementPeriod, SettlementStatement, StatementLine
from tests.settlement.fixtures import flat_history_and_day, make_contract, readings_csv, settle, upload

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
WEDNESDAY = date(2026, 6, 10)
JUNE = (date(2026, 6, 1), date(2026, 6, 30))


def verified_contract(world, actor_esp, delivered=60):
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, delivered)
    services.verification_run(contract=contract)
    return contract


def computed_period(actor_fmo):
    period = services.period_create(actor=actor_fmo, name="June", start=JUNE[0], end=JUNE[1])
    return services.period_compute(actor=actor_fmo, period=period)


def tamper(period):
    """Someone edits a statement outside settlement (the admin, SQL): the period no longer balances."""
    statement = period.statements.order_by("pk").first()
    SettlementStatement.objects.filter(pk=statement.pk).update(
        total_eur=statement.total_eur + Decimal("1.00")
    )


# --- service rules ----------------------------------------------------------------------------------------


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_approving_unbalanced_statements_is_refused(world, actor_esp, actor_fmo):
    verified_contract(world, actor_esp)
    period = computed_period(actor_fmo)
    tamper(period)
    with pytest.raises(DomainError) as error:
        services.period_approve(actor=actor_fmo, period=period)
    assert error.value.code == "settlement_unbalanced" and "1.00 instead of 0.00" in error.value.message
    period.refresh_from_db()
    assert period.state == "computed"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_locking_unbalanced_statements_is_refused_even_with_a_reason(world, actor_esp, actor_fmo):
    verified_contract(world, actor_esp)
    period = services.period_approve(actor=actor_fmo, period=computed_period(actor_fmo))
    tamper(period)
    with pytest.raises(DomainError) as error:
        services.period_lock(actor=actor_fmo, period=period, override_reason="Finance wants it out")
    assert error.value.code == "settlement_unbalanced"
    period.refresh_from_db()
    assert period.state == "approved" and not period.statements.filter(invoice__isnull=False).exists()


@pytest.mark.django_db
def test_approving_statements_older_than_the_results_is_refused(world, actor_esp, actor_fmo):
    with time_machine.travel(NOW, tick=False):
        contract = verified_contract(world, actor_esp)
        period = computed_period(actor_fmo)
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        upload(
            actor_esp, readings_csv(world["asset"], WEDNESDAY, 1, lambda d, i: 100 if 68 <= i < 72 else 200)
        )
        services.verification_run(contract=contract)
        with pytest.raises(DomainError) as error:
            services.period_approve(actor=actor_fmo, period=period)
        assert error.value.code == "settlement_stale" and "Recompute before approving" in error.value.message
        services.period_compute(actor=actor_fmo, period=period)
        assert services.period_approve(actor=actor_fmo, period=period).state == "approved"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("lock", [False, True], ids=["approved", "locked"])
def test_re_verifying_signed_off_figures_needs_a_reason_and_it_is_audited(world, actor_esp, actor_fmo, lock):
    verified_contract(world, actor_esp)
    period = services.period_approve(actor=actor_fmo, period=computed_period(actor_fmo))
    if lock:
        period = services.period_lock(actor=actor_fmo, period=period)
    with pytest.raises(DomainError) as error:
        services.period_reverify(actor=actor_fmo, period=period, reason="  ")
    assert (error.value.code, error.value.field) == ("reason_required", "reason")
    assert not AuditEvent.objects.filter(action="settlement.reverify").exists()
    services.period_reverify(actor=actor_fmo, period=period, reason="Corrected meter data from the DSO")
    event = AuditEvent.objects.get(action="settlement.reverify")
    assert event.reason == "Corrected meter data from the DSO"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_an_unbalanced_adjustment_is_refused(world, actor_esp, actor_fmo):
    contract = verified_contract(world, actor_esp)
    period = settle(actor_fmo, *JUNE)
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY, 1, lambda d, i: 100 if 68 <= i < 72 else 200))
    services.verification_run(contract=contract)
    line = StatementLine.objects.filter(statement__period=period, kind="activation").first()
    StatementLine.objects.filter(pk=line.pk).update(amount_eur=line.amount_eur + Decimal("0.50"))
    with pytest.raises(DomainError) as error:
        services.period_adjust(actor=actor_fmo, period=period)
    assert error.value.code == "settlement_unbalanced" and "pending adjustment" in error.value.message
    assert not SettlementStatement.objects.filter(kind="adjustment").exists()


# --- what a step will do ------------------------------------------------------------------------------------


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_the_lock_preview_counts_invoices_amounts_and_settled_contracts(world, actor_esp, actor_fmo):
    verified_contract(world, actor_esp)
    period = services.period_approve(actor=actor_fmo, period=computed_period(actor_fmo))
    preview = services.period_step_preview(actor=actor_fmo, period=period, step="lock")
    facts = dict(preview["facts"])
    assert facts["Period"] == "June (2026-06-01 – 2026-06-30)"
    assert facts["Invoices numbered and sent"] == 3 and facts["Contracts that become settled"] == 1
    assert {row["organisation_name"] for row in preview["rows"]} == {
        s.organisation.legal_name for s in period.statements.all()
    }
    assert sum(row["total_eur"] for row in preview["rows"]) == 0
    assert preview["refusals"] == [] and preview["reason_field"] is None
    assert not SettlementStatement.objects.filter(invoice__isnull=False).exists()  # nothing written


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_the_preview_lists_what_the_service_will_refuse(world, actor_esp, actor_fmo):
    verified_contract(world, actor_esp)
    period = computed_period(actor_fmo)
    tamper(period)
    preview = services.period_step_preview(actor=actor_fmo, period=period, step="approve")
    assert preview["refusals"] == ["the statements sum to 1.00 instead of 0.00"]
    assert services.period_step_preview(actor=actor_fmo, period=period, step="lock")["refusals"][0] == (
        "approve the period before locking it"
    )


@pytest.mark.django_db
def test_only_the_fmo_previews_a_step(actor_fmo, actor_esp):
    period = services.period_create(actor=actor_fmo, name="June", start=JUNE[0], end=JUNE[1])
    with pytest.raises(DomainError):
        services.period_step_preview(actor=actor_esp, period=period, step="lock")


# --- the confirmation pages -----------------------------------------------------------------------------------


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_a_step_is_confirmed_on_a_page_that_states_what_it_does(
    client, fmo_user, world, actor_esp, actor_fmo
):
    verified_contract(world, actor_esp)
    period = services.period_approve(actor=actor_fmo, period=computed_period(actor_fmo))
    client.force_login(fmo_user)
    url = f"/settlement/periods/{period.pk}/lock/"
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "June (2026-06-01 – 2026-06-30)" in text and "Invoices numbered and sent" in text
    assert 'data-testid="confirm-rows"' in text
    unconfirmed = client.post(url)
    assert unconfirmed.status_code == 400 and "Nothing was done" in unconfirmed.content.decode()
    period.refresh_from_db()
    assert period.state == "approved"
    done = client.post(url, {"confirm": "True"})
    assert done.status_code == 302 and done["Location"] == "/settlement/console/"
    period.refresh_from_db()
    assert period.state == "locked"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_the_re_verify_page_asks_for_a_reason_on_a_locked_period(
    client, fmo_user, world, actor_esp, actor_fmo
):
    verified_contract(world, actor_esp)
    period = settle(actor_fmo, *JUNE)
    client.force_login(fmo_user)
    url = f"/settlement/periods/{period.pk}/reverify/"
    assert 'name="reason"' in client.get(url).content.decode()
    refused = client.post(url, {"confirm": "True"})
    assert refused.status_code == 400 and "give a reason to re-verify" in refused.content.decode()
    assert client.post(url, {"confirm": "True", "reason": "Late meter data"}).status_code == 302
    assert AuditEvent.objects.get(action="settlement.reverify").reason == "Late meter data"


@pytest.mark.django_db
def test_the_compute_page_warns_that_the_approval_is_withdrawn(client, fmo_user, actor_fmo):
    period = services.period_approve(actor=actor_fmo, period=computed_period(actor_fmo))
    client.force_login(fmo_user)
    assert "approval is withdrawn" in client.get(f"/settlement/periods/{period.pk}/compute/").content.decode()


@pytest.mark.django_db
def test_step_pages_are_for_the_fmo_and_known_steps_only(client, fmo_user, esp_user, actor_fmo):
    period = services.period_create(actor=actor_fmo, name="June", start=JUNE[0], end=JUNE[1])
    client.force_login(fmo_user)
    assert client.get(f"/settlement/periods/{period.pk}/delete/").status_code == 404
    client.force_login(esp_user)
    assert client.get(f"/settlement/periods/{period.pk}/lock/").status_code in (403, 404)
    assert client.post(f"/settlement/periods/{period.pk}/compute/", {"confirm": "True"}).status_code in (
        403,
        404,
    )
    period.refresh_from_db()
    assert period.state == SettlementPeriod.State.DRAFT


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_the_api_previews_a_step_and_re_verifies_with_a_reason(client_for, fmo_user, esp_user, actor_fmo):
    period = services.period_approve(actor=actor_fmo, period=computed_period(actor_fmo))
    fmo = client_for(fmo_user)
    preview = fmo.get(f"/api/v1/settlement-periods/{period.pk}/preview/reverify/")
    assert preview.status_code == 200 and preview.json()["reason_field"] == "reason"
    # An unknown step is no URL at all (404, as the schema documents for a GET), never a 400.
    assert fmo.get(f"/api/v1/settlement-periods/{period.pk}/preview/bogus/").status_code == 404
    assert (
        client_for(esp_user).get(f"/api/v1/settlement-periods/{period.pk}/preview/lock/").status_code == 404
    )
    refused = fmo.post(f"/api/v1/settlement-periods/{period.pk}/reverify/", {}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["fields"]["reason"]
    ok = fmo.post(f"/api/v1/settlement-periods/{period.pk}/reverify/", {"reason": "Audit"}, format="json")
    assert ok.status_code == 200 and ok.json() == {"changed": 0}
