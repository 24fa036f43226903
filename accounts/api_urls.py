from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api import ApiKeyViewSet, MeView, OrganisationViewSet

router = SimpleRouter()
router.register("organisations", OrganisationViewSet, basename="organisation")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [path("me/", MeView.as_view(), name="api-me"), *router.urls]
