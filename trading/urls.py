from django.urls import path

from trading import views

app_name = "trading"

urlpatterns = [
    path("products/", views.product_catalogue, name="products"),
    path("sessions/", views.session_list, name="order-book"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/clear/", views.session_rerun, name="session-clear"),
    path("sessions/<int:pk>/replay/", views.session_replay, name="session-replay"),
    path("replays/<int:pk>/", views.replay_detail, name="replay-detail"),
    path("needs/<int:pk>/", views.forecast_needs, name="forecast-needs"),
    path("requests/", views.my_requests, name="my-requests"),
    path("opportunities/", views.opportunities, name="opportunities"),
    path("offers/", views.my_offers, name="my-offers"),
    path("orders/<str:kind>/<int:pk>/cancel/", views.order_cancel_view, name="order-cancel"),
    path("contracts/", views.contract_list, name="contracts"),
    path("contracts/<int:pk>/", views.contract_detail, name="contract-detail"),
    path("activations/", views.activation_list, name="activations"),
    path("open-data/", views.open_data, name="open-data"),
    path("prices/", views.prices, name="prices"),
    path("monitor/", views.monitor, name="monitor"),
    path("import/<str:kind>/", views.orders_import, name="orders-import"),
    path("agreements/", views.agreement_list, name="agreements"),
    path("agreements/<int:pk>/answer/", views.agreement_answer, name="agreement-answer"),
]
