"""Dashboard panels: the organisation, the FMO's approval queue, and what each role can do here."""

from django.urls import NoReverseMatch, reverse

from accounts.models import Role
from accounts.selectors import organisations_pending

# What each role does on flexmarket, with the page that does it (a URL name). Items whose page does
# not exist yet are shown as "coming" rather than hidden, so users know what to expect.
ROLE_GUIDE = {
    Role.FMO: [
        ("Approve organisations and grant roles", "admin:accounts_organisation_changelist"),
        ("Configure markets, products and gate closures", "admin:trading_market_changelist"),
        ("Monitor sessions and clearing runs", "trading:monitor"),
        ("Approve and lock settlement periods", "settlement:console"),
    ],
    Role.DSO: [
        ("Draw congestion zones on the map", "grid:zone-map"),
        ("Load a network model and run power flows", "grid:network-list"),
        ("Prequalify FlexAssets in your zones", "grid:prequalification"),
        ("Post FlexRequests and follow contracts", "trading:my-requests"),
        ("Verify delivery and see costs", "settlement:verifications"),
        ("Upload zone temperatures for the temperature baseline", "settlement:temperatures"),
    ],
    Role.TSO: [
        ("Post TSO FlexRequests", "trading:my-requests"),
        ("See TSO-eligible flexibility per zone", "trading:order-book"),
    ],
    Role.ESP: [
        ("Register FlexAssets and portfolios", "grid:asset-list"),
        ("Answer open requests (opportunities)", "trading:opportunities"),
        ("Post FlexOffers by form, CSV or API", "trading:my-offers"),
        ("Upload meter data and D-prognoses", "settlement:meter-upload"),
        ("See statements and invoices", "settlement:statements"),
    ],
    Role.BRP: [("See activations in your balance perimeter", "trading:activations")],
    Role.OBSERVER: [("Anonymised prices and volumes", "trading:open-data")],
}


def _guide(roles) -> list[dict]:
    items = []
    for role in sorted(roles):
        for label, url_name in ROLE_GUIDE.get(role, []):
            try:
                url = reverse(url_name)
            except NoReverseMatch:
                url = None
            items.append({"role": role, "label": label, "url": url})
    return items


def panels(request, actor) -> list[dict]:
    result = [{"template": "accounts/_panel_organisation.html", "organisation": actor.organisation}]
    result.append({"template": "accounts/_panel_guide.html", "items": _guide(actor.organisation.role_codes)})
    if actor.has_role(Role.FMO) and not actor.on_behalf:
        result.append(
            {"template": "accounts/_panel_pending.html", "pending": list(organisations_pending()[:10])}
        )
    return result
