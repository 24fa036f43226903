from django.urls import path

from settlement import views

app_name = "settlement"

urlpatterns = [
    path("meter-data/", views.meter_upload, name="meter-upload"),
    path("verifications/", views.verification_list, name="verifications"),
    path("verifications/<int:pk>/", views.verification_detail, name="verification-detail"),
    path("statements/", views.statement_list, name="statements"),
    path("statements/<int:pk>/", views.statement_detail, name="statement-detail"),
    path("console/", views.console, name="console"),
    path("periods/<int:pk>/<str:step>/", views.period_action, name="period-action"),
    path("disputes/<int:pk>/resolve/", views.dispute_resolve_view, name="dispute-resolve"),
    path("disputes/<int:pk>/reopen/", views.dispute_reopen_view, name="dispute-reopen"),
    path("accuracy/", views.accuracy, name="accuracy"),
    path("prognoses/", views.prognoses, name="prognoses"),
    path("prognoses/template.csv", views.prognosis_template, name="prognosis-template"),
    path("prognoses/editor/", views.prognosis_editor, name="prognosis-editor"),
    path("temperatures/", views.temperatures, name="temperatures"),
]
