"""Organisation page: members, invitations, API keys; FMO acting on behalf; notifications."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.forms import ActOnBehalfForm, ApiKeyForm, InvitationForm
from accounts.permissions import request_actor
from accounts.selectors import (
    ON_BEHALF_SESSION_KEY,
    api_key_get_visible,
    api_keys_get_visible,
    invitation_get_by_token,
    invitations_get_open,
    members_get_visible,
    notifications_get_unread,
    notifications_get_visible,
    organisations_for_on_behalf,
    user_is_fmo_staff,
    user_is_organisation_admin,
)
from accounts.services import (
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_create,
    notification_mark_all_read,
    notification_mark_read,
)
from accounts.tables import NotificationFilter, NotificationTable
from flexmarket.errors import DomainError
from flexmarket.tables import table_or_export


def _show_domain_error(request, form, error: DomainError) -> None:
    """A field's error goes next to the field; any other shows as a message (the form may be hidden)."""
    if error.field in form.fields:
        form.add_error(error.field, error.message)
    else:
        messages.error(request, error.message)


def _organisation_context(request, **extra):
    actor = request_actor(request)
    organisation = actor.organisation
    context = {
        "organisation": organisation,
        "members": [],
        "api_keys": [],
        "invitations": [],
        "is_org_admin": False,
    }
    if organisation is not None:
        context.update(
            members=members_get_visible(actor=actor, organisation=organisation),
            api_keys=api_keys_get_visible(actor=actor),
            invitations=invitations_get_open(actor=actor),
            is_org_admin=actor.on_behalf
            or user_is_organisation_admin(user=request.user, organisation=organisation),
        )
    if user_is_fmo_staff(user=request.user):
        context["on_behalf_choices"] = organisations_for_on_behalf()
    context.setdefault("api_key_form", ApiKeyForm())
    context.setdefault("invitation_form", InvitationForm())
    context.update(extra)
    return context


@login_required
def organisation_detail(request):
    return render(request, "accounts/organisation_detail.html", _organisation_context(request))


@login_required
@require_POST
def api_key_create_view(request):
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            key, raw_key = api_key_create(
                actor=request_actor(request),
                name=form.cleaned_data["name"],
                expires_at=form.cleaned_data["expires_at"],
            )
        except DomainError as error:
            _show_domain_error(request, form, error)
        else:
            messages.success(request, f"API key '{key.name}' created. Copy it now: it is shown only once.")
            return render(
                request, "accounts/organisation_detail.html", _organisation_context(request, new_key=raw_key)
            )
    return render(
        request,
        "accounts/organisation_detail.html",
        _organisation_context(request, api_key_form=form),
        status=400,
    )


@login_required
@require_POST
def api_key_revoke_view(request, pk: int):
    actor = request_actor(request)
    try:
        key = api_key_revoke(actor=actor, api_key=api_key_get_visible(actor=actor, pk=pk))
        messages.success(request, f"API key '{key.name}' revoked.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("organisation-detail")


@login_required
@require_POST
def invitation_create_view(request):
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = invitation_create(
                actor=request_actor(request),
                email=form.cleaned_data["email"],
                is_admin=form.cleaned_data["is_admin"],
            )
        except DomainError as error:
            _show_domain_error(request, form, error)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("organisation-detail")
    return render(
        request,
        "accounts/organisation_detail.html",
        _organisation_context(request, invitation_form=form),
        status=400,
    )


def invitation_accept_view(request, token: str):
    """The invitee signs in (or signs up) with the invited email address, then accepts."""
    invitation = invitation_get_by_token(token=token)
    if invitation is None:
        raise Http404
    if request.method == "POST" and request.user.is_authenticated:
        try:
            membership = invitation_accept(user=request.user, token=token)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"You joined {membership.organisation}.")
            return redirect("home")
    query = urlencode({"next": request.path, "email": invitation.email})
    context = {
        "invitation": invitation,
        "is_expired": invitation.expires_at <= timezone.now(),
        "login_url": f"{reverse('account_login')}?{query}",
        "signup_url": f"{reverse('account_signup')}?{query}",
    }
    return render(request, "accounts/invitation_accept.html", context)


@login_required
@require_POST
def act_on_behalf_view(request):
    """FMO staff choose an organisation to act for (every act is audited with the FMO as operator)."""
    if not user_is_fmo_staff(user=request.user):
        raise Http404
    form = ActOnBehalfForm(request.POST, organisations=organisations_for_on_behalf())
    if not form.is_valid():
        messages.error(request, "Choose one of the approved organisations.")
    elif form.cleaned_data["organisation"] is not None:
        request.session[ON_BEHALF_SESSION_KEY] = form.cleaned_data["organisation"].pk
        messages.warning(
            request,
            f"You are acting on behalf of {form.cleaned_data['organisation']}. Every action is audited.",
        )
    else:
        request.session.pop(ON_BEHALF_SESSION_KEY, None)
        messages.info(request, "You act for your own organisation again.")
    return redirect("home")


@login_required
def notification_list(request):
    """The actor's notifications, filtered by category and read state; POST marks one (`notification`) or all read."""
    actor = request_actor(request)
    if request.method == "POST":
        if "notification" in request.POST:
            ids = [int(value) for value in request.POST.getlist("notification") if value.isdigit()]
            notification_mark_read(actor=actor, notification_ids=ids)
        else:
            count = notification_mark_all_read(actor=actor)
            messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked as read.")
        return redirect(f"{reverse('notification-list')}?{request.GET.urlencode()}".rstrip("?"))
    found = NotificationFilter(request.GET, queryset=notifications_get_visible(actor=actor))
    table = NotificationTable(found.qs)
    exported = table_or_export(request, table, "notifications")
    if exported is not None:
        return exported
    return render(
        request,
        "accounts/notification_list.html",
        {"table": table, "filter": found, "unread": notifications_get_unread(actor=actor).count()},
        status=400 if found.errors else 200,
    )
