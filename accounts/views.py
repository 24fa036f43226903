from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.permissions import request_actor
from accounts.selectors import api_keys_get_visible, members_get_visible
from accounts.services import notification_mark_read


@login_required
def organisation_detail(request):
    actor = request_actor(request)
    context = {"organisation": actor.organisation, "members": [], "api_keys": []}
    if actor.organisation is not None:
        context["members"] = members_get_visible(actor=actor, organisation=actor.organisation)
        context["api_keys"] = api_keys_get_visible(actor=actor)
    return render(request, "accounts/organisation_detail.html", context)


@login_required
def notification_list(request):
    actor = request_actor(request)
    notifications = list(actor.organisation.notifications.all()[:100]) if actor.organisation else []
    notification_mark_read(actor=actor, notification_ids=[n.pk for n in notifications if n.read_at is None])
    return render(request, "accounts/notification_list.html", {"notifications": notifications})
