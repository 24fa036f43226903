from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.organisation_detail, name="organisation-detail"),
    path("notifications/", views.notification_list, name="notification-list"),
]
