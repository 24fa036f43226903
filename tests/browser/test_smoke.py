import pytest

from tests.browser.conftest import screenshot


@pytest.mark.django_db(transaction=True)
def test_dso_user_sees_dashboard(page, login_as, dso_user, live_server):
    login_as(dso_user)
    page.goto("/")
    assert "Stedin Netbeheer B.V." in page.get_by_test_id("dashboard-title").inner_text()
    screenshot(page, "dashboard-dso")
