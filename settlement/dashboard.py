"""Dashboard panel: verification states and the latest settlement totals of the acting organisation."""

from django.db.models import Sum

from settlement import selectors


def panels(request, actor) -> list[dict]:
    verifications = selectors.verifications_get_visible(actor=actor)
    statements = selectors.statements_get_visible(actor=actor).filter(organisation=actor.organisation)
    return [
        {
            "template": "settlement/_panel.html",
            "verified": verifications.filter(state="verified").count(),
            "awaiting": verifications.filter(state="awaiting_data").count(),
            "disputed": verifications.filter(state="disputed").count(),
            "settled_eur": statements.aggregate(total=Sum("total_eur"))["total"],
            "latest": statements.order_by("-created_at").first(),
        }
    ]
