"""D-prognosis by CSV template (one row per PTU in local time, DST days included) and by the chart editor; every
way in is validated by prognosis_submit."""

import csv
import io
from datetime import date

import pytest

from flexmarket.errors import DomainError, ValidationErrors
from settlement import services
from settlement.models import Prognosis
from tests.grid.factories import FlexAssetFactory

SPRING = date(2027, 3, 28)  # 02:00 CET -> 03:00 CEST: 92 PTUs
AUTUMN = date(2027, 10, 31)  # 03:00 CEST -> 02:00 CET: 100 PTUs
ORDINARY = date(2027, 6, 9)


@pytest.fixture
def asset(esp_org):
    return FlexAssetFactory(owner=esp_org, connection_ean="871000000000000129")


def template_rows(actor, asset, day):
    text = services.prognosis_template_csv(actor=actor, asset=asset, delivery_day=day)
    return list(csv.DictReader(io.StringIO(text)))


def upload(rows) -> io.BytesIO:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = io.BytesIO(out.getvalue().encode())
    data.name = "prognosis.csv"
    return data


def filled(rows, kw="10"):
    return [row | {"kw": kw} for row in rows]


@pytest.mark.django_db
def test_the_spring_template_has_92_rows_and_skips_the_missing_hour(actor_esp, asset):
    rows = template_rows(actor_esp, asset, SPRING)
    assert len(rows) == 92
    assert [row["ptu"] for row in rows[:2]] == ["1", "2"] and rows[-1]["ptu"] == "92"
    assert rows[0]["local_start"] == "00:00 CET" and rows[0]["utc_start"] == "2027-03-27T23:00:00+00:00"
    assert (rows[7]["local_start"], rows[8]["local_start"]) == ("01:45 CET", "03:00 CEST")
    assert rows[-1]["local_start"] == "23:45 CEST"
    assert {row["asset_ean"] for row in rows} == {asset.connection_ean}
    assert {row["delivery_day"] for row in rows} == {"2027-03-28"} and {row["kw"] for row in rows} == {""}


@pytest.mark.django_db
def test_the_autumn_template_has_100_rows_and_both_02_hours(actor_esp, asset):
    rows = template_rows(actor_esp, asset, AUTUMN)
    assert len(rows) == 100
    labels = [row["local_start"] for row in rows]
    assert labels[8:16] == ["02:00 CEST", "02:15 CEST", "02:30 CEST", "02:45 CEST"] + [
        "02:00 CET",
        "02:15 CET",
        "02:30 CET",
        "02:45 CET",
    ]
    assert rows[8]["utc_start"] == "2027-10-31T00:00:00+00:00"
    assert rows[12]["utc_start"] == "2027-10-31T01:00:00+00:00"


@pytest.mark.django_db
def test_the_template_carries_the_current_prognosis(actor_esp, asset):
    services.prognosis_submit(actor=actor_esp, asset=asset, delivery_day=ORDINARY, values_kw=[12.5] * 96)
    rows = template_rows(actor_esp, asset, ORDINARY)
    assert len(rows) == 96 and {row["kw"] for row in rows} == {"12.5"}


@pytest.mark.django_db
def test_no_template_for_another_organisations_asset(actor_esp2, asset):
    with pytest.raises(DomainError):
        services.prognosis_template_csv(actor=actor_esp2, asset=asset, delivery_day=ORDINARY)


@pytest.mark.django_db
def test_a_filled_autumn_template_uploads_as_one_100_value_prognosis(actor_esp, asset):
    rows = filled(template_rows(actor_esp, asset, AUTUMN))
    rows[12]["kw"] = "-3.5"  # the second 02:00 (CET)
    rows.reverse()  # rows are placed by PTU number, not by order
    (prognosis,) = services.prognoses_import_csv(actor=actor_esp, file=upload(rows))
    assert len(prognosis.values_kw) == 100 and prognosis.values_kw[12] == -3.5
    assert prognosis.ptu_start.isoformat() == "2027-10-30T22:00:00+00:00"


@pytest.mark.django_db
def test_template_upload_names_every_bad_row_and_saves_nothing(actor_esp, asset, esp_org):
    other = FlexAssetFactory(owner=esp_org, connection_ean="871000000000000136")
    rows = filled(template_rows(actor_esp, asset, ORDINARY))
    rows[0]["kw"] = "ten"  # file row 2
    rows[1]["kw"] = ""  # row 3
    rows[2]["ptu"] = "97"  # row 4
    rows[4]["utc_start"] = "2027-06-09T09:00:00+00:00"  # row 6: not PTU 5's start
    rows[5]["asset_ean"] = other.connection_ean  # row 7
    rows[6]["delivery_day"] = "2027-06-10"  # row 8
    rows[7]["kw"] = "1e12"  # row 9
    rows[9] |= {"ptu": "9", "utc_start": ""}  # row 11: PTU 9 twice
    with pytest.raises(ValidationErrors) as error:
        services.prognoses_import_csv(actor=actor_esp, file=upload(rows))
    found = {(e["row"], e["field"]) for e in error.value.errors}
    assert found == {
        (2, "kw"),
        (3, "kw"),
        (4, "ptu"),
        (6, "utc_start"),
        (7, "asset_ean"),
        (8, "delivery_day"),
        (9, "kw"),
        (11, "ptu"),
    }
    messages = {e["row"]: e["message"] for e in error.value.errors}
    assert messages[2] == "PTU 1 (00:00 CEST): 'ten' is not a number (kW)."
    assert messages[3] == "PTU 2 (00:15 CEST): give a kW value."
    assert "1 to 96" in messages[4] and "twice" in messages[11] and "were rows moved" in messages[6]
    assert not Prognosis.objects.exists()


@pytest.mark.django_db
def test_template_upload_with_missing_ptus_says_which(actor_esp, asset):
    rows = filled(template_rows(actor_esp, asset, SPRING))
    del rows[40:45]
    with pytest.raises(ValidationErrors) as error:
        services.prognoses_import_csv(actor=actor_esp, file=upload(rows))
    assert error.value.errors == [
        {"row": None, "field": "ptu", "message": "5 PTU(s) of 2027-03-28 have no row: 41, 42, 43, 44, 45."}
    ]
    assert not Prognosis.objects.exists()


@pytest.mark.django_db
def test_a_file_of_neither_layout_is_rejected_with_both_headers(actor_esp):
    data = io.BytesIO(b"asset_ean,delivery_day,value\n871000000000000129,2027-06-09,1\n")
    with pytest.raises(DomainError) as error:
        services.prognoses_import_csv(actor=actor_esp, file=data)
    assert error.value.field == "file" and "ptu, kw" in error.value.message


@pytest.mark.django_db
def test_submit_names_the_bad_ptus_with_their_local_time(actor_esp, asset):
    values = ["5"] * 100
    values[12], values[99] = "abc", "inf"
    with pytest.raises(DomainError) as error:
        services.prognosis_submit(actor=actor_esp, asset=asset, delivery_day=AUTUMN, values_kw=values)
    assert error.value.extra == {"ptus": [13, 100]}
    assert "PTU 13 (02:00 CET): 'abc' is not a number (kW)" in error.value.message
    assert "PTU 100 (23:45 CET)" in error.value.message


# --- pages ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_template_downloads_from_the_page(client, esp_user, asset):
    client.force_login(esp_user)
    response = client.get(f"/settlement/prognoses/template.csv?asset={asset.pk}&delivery_day={SPRING}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f"prognosis-{asset.connection_ean}-{SPRING}.csv" in response["Content-Disposition"]
    assert len(response.content.decode().splitlines()) == 93


@pytest.mark.django_db
def test_no_template_download_of_another_esps_asset(client, esp2_user, asset):
    client.force_login(esp2_user)
    response = client.get(f"/settlement/prognoses/template.csv?asset={asset.pk}&delivery_day={SPRING}")
    assert response.status_code == 302 and response["Location"] == "/settlement/prognoses/"


@pytest.mark.django_db
def test_the_template_upload_shows_row_errors_on_the_page(client, esp_user, actor_esp, asset):
    rows = filled(template_rows(actor_esp, asset, ORDINARY))
    rows[3]["kw"] = "x"
    client.force_login(esp_user)
    response = client.post("/settlement/prognoses/", {"file": upload(rows)})
    assert response.status_code == 400
    assert response.context["row_errors"] == [
        {"row": 5, "field": "kw", "message": "PTU 4 (00:45 CEST): 'x' is not a number (kW)."}
    ]


@pytest.mark.django_db
def test_the_editor_shows_one_input_per_ptu_with_local_labels(client, esp_user, asset):
    client.force_login(esp_user)
    response = client.get(f"/settlement/prognoses/editor/?asset={asset.pk}&delivery_day={SPRING}")
    assert response.status_code == 200
    rows = response.context["rows"]
    assert len(rows) == 92 and rows[8]["label"] == "03:00 CEST"
    assert response.content.decode().count('name="kw_') == 92


@pytest.mark.django_db
def test_the_editor_saves_through_the_service_and_refuses_bad_values(client, esp_user, asset):
    client.force_login(esp_user)
    url = "/settlement/prognoses/editor/"
    data = {"asset": asset.pk, "delivery_day": ORDINARY.isoformat()} | {f"kw_{i}": "7" for i in range(1, 97)}
    bad = client.post(url, data | {"kw_30": "seven"})
    assert bad.status_code == 400 and not Prognosis.objects.exists()
    assert "PTU 30 (07:15 CEST)" in bad.content.decode()
    assert [row["ptu"] for row in bad.context["rows"] if row["bad"]] == [30]
    assert bad.context["rows"][29]["value"] == "seven"  # what was typed stays to be corrected
    saved = client.post(url, data | {"kw_30": "-2.25"})
    assert saved.status_code == 302
    assert Prognosis.objects.get().values_kw[29] == -2.25
    again = client.get(saved["Location"])
    assert again.context["rows"][29]["value"] == "-2.25"


@pytest.mark.django_db
def test_the_editor_does_not_open_another_esps_asset(client, esp2_user, asset):
    client.force_login(esp2_user)
    response = client.get(f"/settlement/prognoses/editor/?asset={asset.pk}&delivery_day={ORDINARY}")
    assert response.status_code == 400 and response.context["rows"] is None
