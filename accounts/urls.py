from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.organisation_detail, name="organisation-detail"),
    path("api-keys/", views.api_key_create_view, name="api-key-create"),
    path("api-keys/<int:pk>/revoke/", views.api_key_revoke_view, name="api-key-revoke"),
    path("invitations/", views.invitation_create_view, name="invitation-create"),
    path("invitations/<str:token>/", views.invitation_accept_view, name="invitation-accept"),
    path("act-as/", views.act_on_behalf_view, name="act-on-behalf"),
    path("notifications/", views.notification_list, name="notification-list"),
]
