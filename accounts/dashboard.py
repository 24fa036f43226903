"""Dashboard panels for organisation status and, for the FMO, the approval queue."""

from accounts.models import Role
from accounts.selectors import organisations_pending


def panels(request, actor) -> list[dict]:
    result = [{"template": "accounts/_panel_organisation.html", "organisation": actor.organisation}]
    if actor.has_role(Role.FMO) and not actor.on_behalf:
        result.append(
            {"template": "accounts/_panel_pending.html", "pending": list(organisations_pending()[:10])}
        )
    return result
