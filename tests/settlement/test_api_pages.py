import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from settlement import services
from settlement.models import MeterDay, SettlementStatement
from tests.settlement.fixtures import (
    DELIVERY_DAY,
    flat_history_and_day,
    make_contract,
    readings_csv,
    settle,
    upload,
)


@pytest.mark.django_db
def test_bulk_readings_by_api_and_field_errors(client_for, esp_user, settled_setup):
    ean = settled_setup["asset"].connection_ean
    client = client_for(esp_user)
    ok = client.post(
        "/api/v1/meter-readings/",
        {"readings": [{"asset_ean": ean, "ptu_start": "2026-06-10T00:00:00Z", "kw": "12.5"}]},
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["changed_count"] == 1
    bad = client.post(
        "/api/v1/meter-readings/",
        {"readings": [{"asset_ean": ean, "ptu_start": "2026-06-10T00:05:00Z", "kw": "1"}]},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["error"]["errors"][0]["field"] == "ptu_start"
    assert client.post("/api/v1/meter-readings/", {"readings": []}, format="json").status_code == 400


@pytest.mark.django_db
def test_other_organisations_cannot_see_readings_results_or_statements(
    client_for, actor_esp, actor_fmo, esp2_user, esp_user, settled_setup, api_client
):
    data = (
        "asset_ean,ptu_start,kw\n"
        + "\n".join(
            f"{settled_setup['asset'].connection_ean},{(date(2026, 6, 1)).isoformat()}T00:{m:02d}:00+00:00,5"
            for m in (0, 15, 30, 45)
        )
        + "\n"
    )
    services.meter_upload_csv(actor=actor_esp, file=io.BytesIO(data.encode()))
    verification = services.verification_run(contract=settled_setup["contract"])
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    services.period_compute(actor=actor_fmo, period=period)
    stranger = client_for(esp2_user)
    assert stranger.get("/api/v1/meter-readings/").json()["count"] == 0
    assert stranger.get(f"/api/v1/verifications/{verification.pk}/").status_code == 404
    assert stranger.get("/api/v1/settlements/").json()["count"] == 0
    assert client_for(esp_user).get("/api/v1/meter-readings/").json()["count"] == 4
    for url in ["/api/v1/meter-readings/", "/api/v1/settlements/", "/api/v1/verifications/"]:
        assert api_client.get(url).status_code == 401


@pytest.mark.django_db
def test_invoice_pdf_and_csv_by_api(client_for, esp_user, actor_esp, actor_fmo, settled_setup):
    from tests.settlement.test_services import load_history_and_day

    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=100)
    services.verification_run(contract=settled_setup["contract"])
    period = services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    for step in (services.period_compute, services.period_approve, services.period_lock):
        step(actor=actor_fmo, period=period)
    client = client_for(esp_user)
    statement = client.get("/api/v1/settlements/").json()["results"][0]
    assert statement["invoice"].startswith("FM-INV-")
    assert client.get(f"/api/v1/settlements/{statement['id']}/invoice/").content.startswith(b"%PDF")
    assert b"activation" in client.get(f"/api/v1/settlements/{statement['id']}/invoice/?type=csv").content


@pytest.mark.django_db
def test_prognosis_api(client_for, esp_user, settled_setup):
    response = client_for(esp_user).post(
        "/api/v1/prognoses/",
        {
            "asset": settled_setup["asset"].pk,
            "delivery_day": str(DELIVERY_DAY + timedelta(days=3)),
            "values_kw": [10] * 96,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/settlement/meter-data/", "/settlement/statements/", "/settlement/console/"]
)
def test_pages_need_login(client, url):
    assert client.get(url)["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_role_pages(client, esp_user, fmo_user, dso_user):
    client.force_login(esp_user)
    assert client.get("/settlement/console/").status_code == 403
    for url in [
        "/settlement/meter-data/",
        "/settlement/verifications/",
        "/settlement/statements/",
        "/settlement/accuracy/",
        "/",
    ]:
        assert client.get(url).status_code == 200, url
    client.force_login(fmo_user)
    assert client.get("/settlement/console/").status_code == 200
    client.force_login(dso_user)
    assert client.get("/settlement/meter-data/").status_code == 200


@pytest.mark.django_db
def test_meter_upload_page_shows_row_errors(client, esp_user, settled_setup):
    upload = io.BytesIO(
        f"asset_ean,ptu_start,kw\n{settled_setup['asset'].connection_ean},2026-06-10T00:00:00,5\n".encode()
    )
    upload.name = "m.csv"
    client.force_login(esp_user)
    response = client.post("/settlement/meter-data/", {"file": upload})
    assert response.status_code == 400 and "UTC offset" in response.content.decode()
    assert not MeterDay.objects.exists()


@pytest.mark.django_db
def test_a_meter_upload_says_its_result_once(client, esp_user, settled_setup):
    start = settled_setup["contract"].ptu_start.isoformat()
    upload = io.BytesIO(
        f"asset_ean,ptu_start,kw\n{settled_setup['asset'].connection_ean},{start},5\n".encode()
    )
    upload.name = "m.csv"
    client.force_login(esp_user)
    page = client.post("/settlement/meter-data/", {"file": upload}).content.decode()
    assert page.count("readings checked") == 1 and 'data-testid="upload-result"' in page


@pytest.mark.worker
def test_verification_task_runs_on_a_real_worker(celery_worker, settled_setup):
    from settlement.services import verification_runs_request
    from tests.worker import wait_for_run

    (run,) = verification_runs_request(contract_ids=[settled_setup["contract"].pk])  # sent to the worker
    run = wait_for_run(run, timeout=90)
    assert (run.state, run.outcome) == ("succeeded", "awaiting_data")


@pytest.mark.django_db
def test_prognosis_form_and_csv(client, esp_user, settled_setup):
    from settlement.models import Prognosis

    day = DELIVERY_DAY + timedelta(days=4)
    client.force_login(esp_user)
    response = client.post(
        "/settlement/prognoses/",
        {
            "asset": settled_setup["asset"].pk,
            "delivery_day": day.isoformat(),
            "values_kw": " ".join(["50"] * 96),
        },
    )
    assert response.status_code == 302 and Prognosis.objects.count() == 1
    csv_text = f"asset_ean,delivery_day,values_kw\n{settled_setup['asset'].connection_ean},{day + timedelta(days=1)},{' '.join(['5'] * 96)}\n{settled_setup['asset'].connection_ean},{DELIVERY_DAY},{' '.join(['5'] * 96)}\n"
    upload = io.BytesIO(csv_text.encode())
    upload.name = "p.csv"
    response = client.post("/settlement/prognoses/", {"file": upload})
    assert response.status_code == 400 and response.context["row_errors"][0]["row"] == 3
    assert Prognosis.objects.count() == 1


# --- the FMO's periods, pending adjustments and dispute rulings by API and page -----------------------------

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
WEDNESDAY = date(2026, 6, 10)


def locked_period_with_a_correction(world, actor_esp, actor_fmo):
    """A June period locked with a 60 % delivery, then the meter data corrected to 100 % (re-verified)."""
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 60)
    services.verification_run(contract=contract)
    period = settle(actor_fmo, date(2026, 6, 1), date(2026, 6, 30))
    upload(actor_esp, readings_csv(world["asset"], WEDNESDAY, 1, lambda d, i: 100 if 68 <= i < 72 else 200))
    services.verification_run(contract=contract)
    return period


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_the_fmo_sees_and_issues_the_pending_adjustment_by_api(
    client_for, api_client, world, actor_esp, actor_fmo, fmo_user, esp_user
):
    period = locked_period_with_a_correction(world, actor_esp, actor_fmo)
    fmo = client_for(fmo_user)
    pending = fmo.get(f"/api/v1/settlement-periods/{period.pk}/pending-adjustment/")
    assert pending.status_code == 200
    seller = next(row for row in pending.json() if row["organisation"] == world["esp"].pk)
    assert seller["total_eur"] == "4.80"
    assert {line["kind"]: line["amount_eur"] for line in seller["lines"]} == {
        "activation": "3.20",
        "penalty": "1.60",
    }
    for client, code in ((client_for(esp_user), 404), (api_client, 401)):
        assert client.get(f"/api/v1/settlement-periods/{period.pk}/pending-adjustment/").status_code == code
        assert client.post(f"/api/v1/settlement-periods/{period.pk}/adjust/").status_code == code
    issued = fmo.post(f"/api/v1/settlement-periods/{period.pk}/adjust/")
    assert issued.status_code == 201
    esp_statement = next(s for s in issued.json() if s["organisation"] == world["esp"].legal_name)
    assert esp_statement["kind"] == "adjustment" and esp_statement["invoice"].startswith("FM-INV-")
    assert sorted(line["kind"] for line in esp_statement["lines"]) == ["activation", "penalty"]
    assert fmo.get(f"/api/v1/settlement-periods/{period.pk}/pending-adjustment/").json() == []


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_the_console_shows_the_pending_adjustment_and_issues_it(
    client, world, actor_esp, actor_fmo, fmo_user
):
    period = locked_period_with_a_correction(world, actor_esp, actor_fmo)
    client.force_login(fmo_user)
    page = client.get("/settlement/console/").content.decode()
    assert f'data-testid="pending-adjustment-{period.pk}"' in page and "4.80" in page
    client.post(f"/settlement/periods/{period.pk}/adjust/", {"confirm": "True"})
    assert SettlementStatement.objects.filter(kind="adjustment").count() == 2
    assert (
        f'data-testid="pending-adjustment-{period.pk}"'
        not in client.get("/settlement/console/").content.decode()
    )


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_locking_a_future_period_by_api_needs_a_reason(client_for, fmo_user, esp_user):
    fmo = client_for(fmo_user)
    created = fmo.post(
        "/api/v1/settlement-periods/", {"name": "Next week", "start": "2026-11-23", "end": "2026-11-29"}
    )
    assert created.status_code == 201
    pk = created.json()["id"]
    assert client_for(esp_user).post(f"/api/v1/settlement-periods/{pk}/compute/").status_code == 404
    assert fmo.post(f"/api/v1/settlement-periods/{pk}/compute/").json()["state"] == "computed"
    assert fmo.post(f"/api/v1/settlement-periods/{pk}/approve/").json()["state"] == "approved"
    refused = fmo.post(f"/api/v1/settlement-periods/{pk}/lock/", {})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "period_lock_refused"
    locked = fmo.post(f"/api/v1/settlement-periods/{pk}/lock/", {"override_reason": "Early invoice agreed"})
    assert locked.status_code == 200 and locked.json()["lock_override_reason"] == "Early invoice agreed"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_the_console_asks_for_a_reason_and_lists_what_blocks_the_lock(client, fmo_user, actor_fmo):
    period = services.period_create(
        actor=actor_fmo, name="Next week", start=date(2026, 11, 23), end=date(2026, 11, 29)
    )
    services.period_compute(actor=actor_fmo, period=period)
    services.period_approve(actor=actor_fmo, period=period)
    client.force_login(fmo_user)
    page = client.get("/settlement/console/").content.decode()
    assert f'data-testid="override-{period.pk}"' in page and "not over" in page
    refused = client.post(f"/settlement/periods/{period.pk}/lock/", {"confirm": "True"})
    assert refused.status_code == 400 and "Give a reason to lock anyway" in refused.content.decode()
    period.refresh_from_db()
    assert period.state == "approved"
    client.post(
        f"/settlement/periods/{period.pk}/lock/",
        {"confirm": "True", "override_reason": "Early invoice agreed"},
    )
    period.refresh_from_db()
    assert period.state == "locked"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_disputes_by_api_resolve_and_reopen(client_for, world, actor_esp, fmo_user, esp_user, esp2_user):
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 60)
    verification = services.verification_run(contract=contract)
    seller = client_for(esp_user)
    assert (
        seller.post(
            f"/api/v1/verifications/{verification.pk}/dispute/", {"comment": "Recalibrated"}
        ).status_code
        == 201
    )
    dispute = seller.get("/api/v1/disputes/").json()["results"][0]
    assert client_for(esp2_user).get(f"/api/v1/disputes/{dispute['id']}/").status_code == 404
    ruling = {"uphold": True, "resolution": "Report accepted", "accepted_delivered_kwh": "95"}
    assert seller.post(f"/api/v1/disputes/{dispute['id']}/resolve/", ruling).status_code == 400
    fmo = client_for(fmo_user)
    bad = fmo.post(f"/api/v1/disputes/{dispute['id']}/resolve/", {**ruling, "accepted_delivered_kwh": "-1"})
    assert bad.status_code == 400 and "accepted_delivered_kwh" in str(bad.json())
    resolved = fmo.post(f"/api/v1/disputes/{dispute['id']}/resolve/", ruling)
    assert resolved.status_code == 200 and resolved.json()["state"] == "upheld"
    assert fmo.post(f"/api/v1/disputes/{dispute['id']}/reopen/", {}).status_code == 400
    reopened = fmo.post(f"/api/v1/disputes/{dispute['id']}/reopen/", {"reason": "New report"})
    assert reopened.status_code == 200 and reopened.json()["state"] == "open"


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_statement_page_shows_currency_vat_and_gross(client, world, actor_esp, actor_fmo, esp_user):
    contract = make_contract(
        product=world["product"], day=WEDNESDAY, seller_asset=world["asset"], buyer=world["dso"]
    )
    flat_history_and_day(actor_esp, world["asset"], WEDNESDAY, 100)
    services.verification_run(contract=contract)
    settle(actor_fmo, date(2026, 6, 1), date(2026, 6, 30))
    statement = SettlementStatement.objects.get(organisation=world["esp"])
    client.force_login(esp_user)
    page = client.get(f"/settlement/statements/{statement.pk}/").content.decode()
    assert "VAT 21 %" in page and 'data-testid="statement-gross">9.56<' in page
    api = client.get(f"/api/v1/settlements/{statement.pk}/").json()
    assert (api["currency"], api["vat_eur"], api["gross_eur"]) == ("EUR", "1.66", "9.56")


@pytest.mark.django_db
def test_verification_list_filters_and_exports(client, esp_user, settled_setup):
    import csv

    from settlement.models import DeliveryVerification

    contract = settled_setup["contract"]
    DeliveryVerification.objects.create(
        contract=contract, state="verified", method="high_x_of_y", baseline_kw=[], metered_kw=[], delivered_kw=[],
        ratio=[], status=[], contracted_kwh=Decimal("25.000"), delivered_kwh=Decimal("22.500"), inputs_hash="x",
    )  # fmt: skip
    client.force_login(esp_user)
    page = client.get("/settlement/verifications/", {"state": "verified"}).content.decode()
    assert "1 verification ·" in page and contract.reference in page and ">22.5<" in page
    assert (
        "0 verifications ·"
        in client.get("/settlement/verifications/", {"state": "disputed"}).content.decode()
    )
    rows = list(
        csv.reader(client.get("/settlement/verifications/", {"_export": "csv"}).content.decode().splitlines())
    )
    assert rows[0][0] == "Contract" and rows[1][0] == contract.reference and rows[1][-1] == "verified"
