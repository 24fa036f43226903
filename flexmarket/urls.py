from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from flexmarket import views
from flexmarket.api import schema  # noqa: F401  (registers the Api-Key OpenAPI extension)
from flexmarket.api.imports import ImportJobViewSet

platform_router = SimpleRouter()
platform_router.register("import-jobs", ImportJobViewSet, basename="import-job")

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("grid.api_urls")),
    path("", include("trading.api_urls")),
    path("", include("settlement.api_urls")),
    path("", include(platform_router.urls)),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("imports/<int:pk>/", views.import_job_detail, name="import-job"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("organisation/", include("accounts.urls")),
    path("grid/", include("grid.urls")),
    path("trading/", include("trading.urls")),
    path("settlement/", include("settlement.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

handler400 = "flexmarket.views.bad_request"
handler403 = "flexmarket.views.permission_denied"
handler404 = "flexmarket.views.page_not_found"
handler500 = "flexmarket.views.server_error"
