"""Pages answer a hand-made URL or a first visit without server errors or premature form errors."""

from __future__ import annotations

import pytest

from tests.trading.factories import ProductFactory, session_for, tomorrow


@pytest.mark.django_db
def test_the_prognoses_page_shows_blank_forms_before_any_input(client, esp_user):
    client.force_login(esp_user)
    response = client.get("/settlement/prognoses/")
    assert response.status_code == 200
    assert "This field is required." not in response.content.decode()
    assert not response.context["form"].is_bound and not response.context["csv_form"].is_bound


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["?ptu=abc", "?zone=abc", "?ptu=-5", "?ptu=100000", "?ptu=1e3&zone=%00"])
def test_a_session_page_with_a_malformed_ptu_or_zone_is_not_a_server_error(client, dso_user, query):
    session = session_for(ProductFactory(), tomorrow())
    client.force_login(dso_user)
    response = client.get(f"/trading/sessions/{session.pk}/{query}")
    assert response.status_code == 200
    assert 0 <= response.context["ptu"] < response.context["n_ptus"]
