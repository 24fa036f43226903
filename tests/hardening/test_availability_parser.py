"""The availability parser runs in linear time and its input is bounded (issue 15, item 5: ReDoS).

On main `"mon " + "-" * N + " x"` backtracked quadratically: 0.67 s at N = 10k, 57 s at N = 100k, through
the API, the CSV import and the form. bench/availability.py prints the figures.
"""

import io
import subprocess
import sys

import pytest
from django.conf import settings

from flexmarket.errors import DomainError
from grid.models import FlexAsset
from grid.services import availability_clean

pytestmark = pytest.mark.django_db

PATHOLOGICAL = "mon " + "-" * 100_000 + " x"


def test_pathological_windows_are_refused_at_once_in_a_fresh_process():
    """Parsed with the length bound lifted, in a child process that is killed after 20 s (main: ~57 s)."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'flexmarket.settings'; django.setup()\n"
        "from django.conf import settings; settings.FLEXMARKET_AVAILABILITY_MAX_CHARS = 10**9\n"
        "from grid.services import availability_clean\n"
        "from flexmarket.errors import DomainError\n"
        "try:\n    availability_clean('mon ' + '-' * 100_000 + ' x')\n"
        "except DomainError as error:\n    print('refused:', error.field)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert result.stdout.strip() == "refused: availability", result.stderr[-2000:]


@pytest.mark.parametrize(
    "text",
    [
        "mon " + "-" * 400 + " x",
        "mon-fri 07:00-22:00-",
        "mon-fri  07:00--22:00",
        "mon-fri 07:00-22:00 extra",
        "fri-mon 07:00-22:00",
        "xyz 07:00-22:00",
        "mon-fri 7:00-22:00",
    ],
)
def test_malformed_windows_are_refused(text):
    with pytest.raises(DomainError) as caught:
        availability_clean(text)
    assert caught.value.field == "availability"


def test_a_time_with_a_trailing_newline_is_not_hh_mm():
    with pytest.raises(DomainError):
        availability_clean([{"days": [0], "start": "07:00\n", "end": "22:00"}])


def test_well_formed_windows_still_parse():
    assert availability_clean("mon-fri 07:00-22:00; sat 09:00-13:00") == [
        {"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "22:00"},
        {"days": [5], "start": "09:00", "end": "13:00"},
    ]


def test_availability_text_length_is_bounded(settings):
    settings.FLEXMARKET_AVAILABILITY_MAX_CHARS = 40
    with pytest.raises(DomainError) as caught:
        availability_clean("mon-fri 07:00-22:00; sat 09:00-13:00; sun 09:00-13:00")
    assert "At most 40 characters" in caught.value.message


def test_window_count_is_bounded(settings):
    settings.FLEXMARKET_AVAILABILITY_MAX_WINDOWS = 2
    windows = [{"days": [d], "start": "07:00", "end": "08:00"} for d in range(3)]
    with pytest.raises(DomainError):
        availability_clean(windows)


ASSET = {
    "name": "B",
    "asset_type": "battery",
    "connection_ean": "871000000000077770",
    "latitude": "52.09",
    "longitude": "5.12",
    "max_up_kw": "100",
    "max_down_kw": "100",
    "energy_capacity_kwh": "200",
}


def test_pathological_availability_is_a_400_through_api_csv_and_form(client_for, client, esp_user):
    api = client_for(esp_user)
    response = api.post("/api/v1/assets/", ASSET | {"availability": PATHOLOGICAL}, format="json")
    assert response.status_code == 400 and "availability" in response.json()["error"]["fields"]

    row = ASSET | {"availability": PATHOLOGICAL}
    csv_file = io.BytesIO((",".join(row) + "\n" + ",".join(row.values()) + "\n").encode())
    csv_file.name = "assets.csv"
    response = api.post("/api/v1/assets/import/", {"file": csv_file}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["field"] == "availability"

    client.force_login(esp_user)
    response = client.post("/grid/assets/new/", ASSET | {"availability": PATHOLOGICAL})
    assert response.status_code == 400 and "availability" in response.context["form"].errors
    assert not FlexAsset.objects.exists()
    assert len(PATHOLOGICAL) > settings.FLEXMARKET_AVAILABILITY_MAX_CHARS
