"""Static files are served compressed under hashed names and cached for a year once collected (issue 14 item 4);
without a collected manifest the plain names still work."""

import gzip

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, override_settings

PLOTLY = "plotly/plotly.min.js"


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


def test_without_collected_files_static_urls_name_the_plain_file(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path):
        assert static(PLOTLY) == f"/static/{PLOTLY}"


def test_collected_plotly_is_served_gzipped_under_its_hashed_name_and_cached_for_a_year(collected):
    with override_settings(STATIC_ROOT=collected):
        url = static(PLOTLY)
        assert (
            url.startswith("/static/plotly/plotly.min.")
            and url.endswith(".js")
            and url != f"/static/{PLOTLY}"
        )
        response = Client().get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        assert response.status_code == 200
        assert response["Content-Encoding"] == "gzip"
        assert "max-age=315360000" in response["Cache-Control"] and "immutable" in response["Cache-Control"]
        body = b"".join(response.streaming_content)
        plain = (collected / PLOTLY).read_bytes()
        assert gzip.decompress(body) == plain and len(body) < len(plain) / 3


def test_a_file_missing_from_the_manifest_falls_back_to_its_plain_name(collected):
    with override_settings(STATIC_ROOT=collected):
        assert static("css/not-collected-yet.css") == "/static/css/not-collected-yet.css"


@pytest.mark.parametrize("hashed", [False, True])
def test_in_debug_hashed_urls_follow_the_setting_the_demo_turns_on(collected, hashed):
    with override_settings(STATIC_ROOT=collected, DEBUG=True, FLEXMARKET_STATIC_HASHED_URLS=hashed):
        assert (static(PLOTLY) != f"/static/{PLOTLY}") is hashed
