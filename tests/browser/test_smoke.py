import pytest

from tests.browser.conftest import screenshot


@pytest.mark.django_db(transaction=True)
def test_dso_user_sees_dashboard(page, login_as, dso_user, live_server):
    login_as(dso_user)
    page.goto("/")
    assert "Stedin Netbeheer B.V." in page.get_by_test_id("dashboard-title").inner_text()
    screenshot(page, "dashboard-dso")


@pytest.mark.django_db(transaction=True)
def test_fmo_acts_on_behalf_and_stops(page, login_as, fmo_user, esp_org):
    login_as(fmo_user)
    page.goto("/organisation/")
    page.get_by_test_id("on-behalf-select").select_option(str(esp_org.pk))
    page.get_by_role("button", name="Switch").click()
    assert "Acting for Flexy Aggregation B.V." in page.get_by_test_id("on-behalf-banner").inner_text()
    page.goto("/organisation/")
    screenshot(page, "organisation-acting-on-behalf")
    page.get_by_test_id("stop-acting").click()
    assert page.get_by_test_id("on-behalf-banner").count() == 0
    assert "Flex Market Operator B.V." in page.get_by_test_id("dashboard-title").inner_text()


@pytest.mark.django_db(transaction=True)
def test_account_pages_share_the_portal_layout(page, login_as, esp_user):
    page.goto("/accounts/password/reset/")
    page.fill("input[name=email]", esp_user.email)
    screenshot(page, "password-reset")
    page.get_by_role("button", name="Reset My Password").click()
    page.wait_for_url("**/accounts/password/reset/done/")
    screenshot(page, "password-reset-done")
    login_as(esp_user)
    for url, name in [("/accounts/2fa/", "mfa-index"), ("/accounts/email/", "account-email")]:
        page.goto(url)
        assert page.locator("nav.navbar").count() == 1
        screenshot(page, name)
