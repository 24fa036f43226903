from django.urls import path

from grid import views

app_name = "grid"

urlpatterns = [
    path("zones/", views.zone_map, name="zone-map"),
    path("zones/import/", views.zone_import, name="zone-import"),
    path("assets/", views.asset_list, name="asset-list"),
    path("assets/new/", views.asset_register_view, name="asset-register"),
    path("assets/import/", views.asset_import, name="asset-import"),
    path("assets/<int:pk>/", views.asset_detail, name="asset-detail"),
    path("prequalification/", views.prequalification_queue, name="prequalification"),
    path("prequalification/<int:pk>/", views.prequalification_decide, name="prequalification-decide"),
    path(
        "prequalification/<int:pk>/checklist/",
        views.prequalification_checklist,
        name="prequalification-checklist",
    ),
    path("portfolios/", views.portfolio_list, name="portfolio-list"),
    path("networks/", views.network_list, name="network-list"),
    path("networks/loads/<int:pk>/", views.network_load_detail, name="network-load"),
    path("networks/<int:pk>/", views.network_detail, name="network-detail"),
    path("power-flows/<int:pk>/", views.power_flow_detail, name="power-flow-detail"),
    path("networks/<int:pk>/forecasts/", views.forecast_list, name="forecast-list"),
    path("networks/<int:pk>/mapping/", views.network_mapping, name="network-mapping"),
    path("forecasts/<int:pk>/", views.forecast_detail, name="forecast-detail"),
]
