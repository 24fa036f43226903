from django import forms

from accounts.models import Role
from accounts.selectors import invitations_get_for_email
from accounts.services import organisation_application_validate, organisation_apply
from flexmarket.errors import DomainError

APPLICABLE_ROLES = [(role.value, role.label) for role in Role if role != Role.FMO]
ORGANISATION_FIELDS = ("legal_name", "country", "code", "roles")


class OrganisationSignupForm(forms.Form):
    """Extra sign-up fields (django-allauth): the person, and the organisation they apply for.

    Someone with an open invitation may leave the organisation fields empty: they join the inviting
    organisation by accepting the invitation after verifying their email, instead of applying.
    """

    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    legal_name = forms.CharField(
        max_length=200,
        label="Organisation legal name",
        required=False,
        help_text="Invited by a colleague? Leave the organisation fields empty.",
    )
    country = forms.CharField(max_length=2, initial="NL", help_text="Two-letter ISO code", required=False)
    code = forms.CharField(
        max_length=32,
        label="EIC or EAN code",
        help_text="e.g. 10X1001A1001A361 or 8712345678906",
        required=False,
    )
    roles = forms.MultipleChoiceField(
        choices=APPLICABLE_ROLES,
        widget=forms.CheckboxSelectMultiple,
        label="Roles applied for",
        required=False,
    )

    def clean(self):
        cleaned = super().clean()
        if self._joins_by_invitation(cleaned):
            cleaned["applies"] = False
            return cleaned
        for name in ORGANISATION_FIELDS:
            if not cleaned.get(name) and name not in self.errors:
                self.add_error(name, "This field is required.")
        if self.errors:
            return cleaned
        cleaned["applies"] = True
        try:
            cleaned.update(
                organisation_application_validate(
                    legal_name=cleaned["legal_name"],
                    country=cleaned["country"],
                    code=cleaned["code"],
                    requested_roles=cleaned["roles"],
                )
            )
        except DomainError as error:
            self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned

    @staticmethod
    def _joins_by_invitation(cleaned) -> bool:
        """Invited people who leave every organisation field empty join instead of applying."""
        email = cleaned.get("email") or ""
        if any(cleaned.get(name) for name in ("legal_name", "code", "roles")):
            return False
        return bool(email) and invitations_get_for_email(email=email).exists()

    def signup(self, request, user):
        user.first_name = self.cleaned_data["first_name"]
        user.last_name = self.cleaned_data["last_name"]
        user.save(update_fields=["first_name", "last_name"])
        if not self.cleaned_data.get("applies"):
            return
        organisation_apply(
            user=user,
            legal_name=self.cleaned_data["legal_name"],
            country=self.cleaned_data["country"],
            code=self.cleaned_data["code"],
            requested_roles=self.cleaned_data["requested_roles"],
        )


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses this key, e.g. 'EMS production'")
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional; UTC",
    )


class InvitationForm(forms.Form):
    email = forms.EmailField()
    is_admin = forms.BooleanField(required=False, label="Organisation administrator")


class ActOnBehalfForm(forms.Form):
    """FMO staff pick an organisation to act for; empty means their own again."""

    organisation = forms.ModelChoiceField(queryset=None, required=False)

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations
