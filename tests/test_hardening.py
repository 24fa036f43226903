"""Response hardening: CSP and Permissions-Policy, formula-safe CSV exports, JSON 500s for API clients with the
request id, and one log line per django.request record."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from flexmarket.csvsafe import SafeDictWriter, safe_cell
from settlement import services as settlement_services

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part.strip()
    }


# --- headers ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/api/v1/me/", "/api/docs/", "/healthz"])
def test_every_response_has_a_strict_content_security_policy(client, path):
    directives = csp_directives(client.get(path))
    assert directives["script-src"] == ["'self'"]  # no inline or eval'd script anywhere
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"] and directives["form-action"] == ["'self'"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/api/v1/me/"])
def test_every_response_turns_off_unused_browser_features(client, path):
    policy = client.get(path)["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy


def test_map_tiles_are_allowed_from_the_configured_tile_server_only():
    from flexmarket.settings import _tile_origin

    assert _tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") == ["https://*.tile.example.org"]
    assert _tile_origin("") == []


def test_no_template_has_an_inline_script():
    """script-src 'self' would block them: every script is a file; data goes in json_script blocks."""
    inline = []
    for path in TEMPLATES.rglob("*.html"):
        for tag in re.findall(r"<script\b[^>]*>", path.read_text()):
            if "src=" not in tag and "application/json" not in tag:
                inline.append(f"{path.relative_to(TEMPLATES)}: {tag}")
        if re.search(r"\son[a-z]+\s*=", path.read_text()):
            inline.append(f"{path.relative_to(TEMPLATES)}: inline event handler")
    assert inline == []


@pytest.mark.django_db
def test_the_api_docs_load_their_script_from_our_origin(client):
    page = client.get("/api/docs/").content.decode()
    assert all("src=" in tag for tag in re.findall(r"<script\b[^>]*>", page))
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


# --- CSV exports ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+SUM(1,2)", "'+SUM(1,2)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Flexy B.V.", "Flexy B.V."),
        ("", ""),
        (Decimal("-12.50"), Decimal("-12.50")),  # numbers stay numbers, negative amounts included
        (-3, -3),
        (None, None),
    ],
)
def test_formula_prefixes_in_text_cells_are_neutralised(value, written):
    assert safe_cell(value) == written


def test_the_dict_writer_neutralises_values_and_keeps_the_header():
    buffer = io.StringIO()
    writer = SafeDictWriter(buffer, fieldnames=["name", "kw"])
    writer.writeheader()
    writer.writerow({"name": '=HYPERLINK("http://x")', "kw": -5})
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [
        ["name", "kw"],
        ['\'=HYPERLINK("http://x")', "-5"],
    ]


@pytest.mark.django_db
def test_an_invoice_csv_does_not_carry_a_formula_in_an_organisation_name(
    client_for, esp_user, esp_org, actor_esp, actor_fmo, settled_setup
):
    from tests.settlement.test_services import load_history_and_day

    esp_org.legal_name = "=cmd|' /C calc'!A0"
    esp_org.save(update_fields=["legal_name"])
    load_history_and_day(actor_esp, settled_setup["asset"], delivered_kw=100)
    settlement_services.verification_run(contract=settled_setup["contract"])
    period = settlement_services.period_create(
        actor=actor_fmo, name="June", start=date(2026, 6, 1), end=date(2026, 6, 30)
    )
    for step in (
        settlement_services.period_compute,
        settlement_services.period_approve,
        settlement_services.period_lock,
    ):
        step(actor=actor_fmo, period=period)
    client = client_for(esp_user)
    statement = client.get("/api/v1/settlements/").json()["results"][0]
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/api/v1/settlements/{statement['id']}/invoice/?type=csv").content.decode()
            )
        )
    )
    organisation_column = rows[0].index("organisation")
    assert {row[organisation_column] for row in rows[1:]} == {"'=cmd|' /C calc'!A0"}


# --- server errors ---------------------------------------------------------------------------------------


@pytest.fixture
def broken_me_endpoint(monkeypatch):
    from accounts.api import MeView

    def explode(self, request):
        raise RuntimeError("boom")

    monkeypatch.setattr(MeView, "get", explode)


@pytest.mark.django_db
def test_an_api_server_error_answers_json_with_the_request_id_it_was_logged_under(
    esp_user, broken_me_endpoint, caplog
):
    client = Client(raise_request_exception=False)
    client.force_login(esp_user)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/api/v1/me/", HTTP_X_REQUEST_ID="trace-4711")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "server_error" and error["request_id"] == "trace-4711" and error["fields"] == {}
    assert response["X-Request-ID"] == "trace-4711"
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info is not None  # the traceback
    assert record.request_id == "trace-4711"


@pytest.mark.django_db
def test_a_page_server_error_stays_an_html_page(esp_user, monkeypatch):
    from flexmarket import views

    def explode(request):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "DASHBOARD_MODULES", [])
    monkeypatch.setattr(views, "render", lambda *args, **kwargs: explode(None))
    client = Client(raise_request_exception=False)
    client.force_login(esp_user)
    response = client.get("/")
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/api/v1/assets/abc/", "/api/v1/assets/abc/prequalify/", "/api/v1/no-such-endpoint/"]
)
def test_an_unknown_api_path_answers_404_in_the_api_error_format(client, esp_user, path):
    client.force_login(esp_user)
    response = client.post(path) if path.endswith("prequalify/") else client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


LOG_ONE_RECORD = """
import logging, django
django.setup()
from accounts.context import current_request_id
current_request_id.set("abc123")
logging.getLogger("django.request").warning("Not Found: /nowhere")
"""


def test_with_debug_a_django_request_record_is_logged_once_with_the_request_id():
    """Django's own "django" logger handler (console when DEBUG) and the root handler printed it twice."""
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "flexmarket.settings"}
    result = subprocess.run([sys.executable, "-c", LOG_ONE_RECORD], env=env, capture_output=True, text=True)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "Not Found: /nowhere" in line]
    assert len(lines) == 1
    assert "[request_id=abc123]" in lines[0]
