import pytest

from grid import services
from tests.grid.factories import square


@pytest.mark.django_db
def test_admin_lists_zones_with_filters_and_shows_the_outline(client, django_user_model, actor_dso):
    zone = services.grid_location_create(
        actor=actor_dso, name="Admin zone", code="ean.admin.1", geometry=square(5.12, 52.09)
    )
    admin = django_user_model.objects.create_superuser(email="root@example.org", password="x-Long-pass-1")
    client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
    listing = client.get("/admin/grid/gridlocation/?status__exact=normal")
    assert listing.status_code == 200 and b"Admin zone" in listing.content
    page = client.get(f"/admin/grid/gridlocation/{zone.pk}/change/")
    assert page.status_code == 200
    assert b'id="zone-outline"' in page.content and b'id="zone-geometry"' in page.content
    assert b"js/grid-admin.js" in page.content
    assert b"js/grid-map.js" in page.content and b'id="zone-map-settings"' in page.content  # offline base too
