from accounts.permissions import request_actor
from accounts.selectors import invitations_get_for_email, notifications_get_unread


def organisation(request):
    """Navigation needs the acting organisation, its roles and unread notifications."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    actor = request_actor(request)
    org = actor.organisation
    return {
        "actor": actor,
        "current_organisation": org,
        "current_roles": sorted(org.role_codes) if org else [],
        "unread_notifications": notifications_get_unread(actor=actor).count() if org else 0,
        # Lazy: queried only by the pages that show it (the landing page of someone without an organisation).
        "open_invitations": invitations_get_for_email(email=request.user.email),
    }
