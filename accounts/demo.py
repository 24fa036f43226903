"""Demo organisations and users: an FMO, two DSOs, a TSO and three ESPs (and a BRP)."""

from __future__ import annotations

from dataclasses import dataclass, field

from accounts.models import Membership, Organisation, OrganisationRole, Role, User

DEMO_PASSWORD = "flexmarket-demo"

ORGANISATIONS = [
    # key, legal name, code, roles, user email
    ("fmo", "Flexmarket Operator B.V.", "8719000000001", [Role.FMO], "operator@fmo.demo"),
    ("dso_north", "Noordnet Netbeheer B.V.", "8719000000002", [Role.DSO], "planner@noordnet.demo"),
    ("dso_south", "Zuidnet Netbeheer B.V.", "8719000000003", [Role.DSO], "planner@zuidnet.demo"),
    ("tso", "Landelijk Hoogspanningsnet TSO B.V.", "10XNL-TSO-DEMO-1", [Role.TSO], "operator@tso.demo"),
    ("esp_flexy", "Flexy Aggregation B.V.", "8719000000005", [Role.ESP], "trader@flexy.demo"),
    ("esp_volt", "Voltshift Energy B.V.", "8719000000006", [Role.ESP], "trader@voltshift.demo"),
    ("esp_heat", "Warmtepomp Collectief B.V.", "8719000000007", [Role.ESP], "trader@warmtepomp.demo"),
    ("brp", "Balans Energie B.V.", "8719000000008", [Role.BRP], "analyst@balans.demo"),
]


@dataclass
class DemoCast:
    organisations: dict[str, Organisation] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def credentials(self) -> list[tuple[str, str, str]]:
        return [(key, user.email, DEMO_PASSWORD) for key, user in self.users.items()]


def seed() -> DemoCast:
    """Create (or reuse) the demo organisations, each with one admin user."""
    cast = DemoCast()
    for key, legal_name, code, roles, email in ORGANISATIONS:
        organisation, _ = Organisation.objects.get_or_create(
            code=code,
            defaults={
                "legal_name": legal_name,
                "country": "NL",
                "status": Organisation.Status.APPROVED,
                "requested_roles": [str(role) for role in roles],
            },
        )
        for role in roles:
            OrganisationRole.objects.get_or_create(organisation=organisation, role=role)
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(
                email=email,
                password=DEMO_PASSWORD,
                first_name=key.split("_")[0].upper(),
                last_name="Demo",
                is_staff=key == "fmo",
                is_superuser=key == "fmo",
            )
            from allauth.account.models import EmailAddress

            EmailAddress.objects.get_or_create(
                user=user, email=email, defaults={"verified": True, "primary": True}
            )
        Membership.objects.get_or_create(user=user, organisation=organisation, defaults={"is_admin": True})
        cast.organisations[key] = organisation
        cast.users[key] = user
    return cast
