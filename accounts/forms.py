from django import forms

from accounts.models import Role
from accounts.services import organisation_application_validate, organisation_apply
from flexmarket.errors import DomainError

APPLICABLE_ROLES = [(role.value, role.label) for role in Role if role != Role.FMO]


class OrganisationSignupForm(forms.Form):
    """Extra sign-up fields (django-allauth): the person, and the organisation they apply for."""

    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    legal_name = forms.CharField(max_length=200, label="Organisation legal name")
    country = forms.CharField(max_length=2, initial="NL", help_text="Two-letter ISO code")
    code = forms.CharField(
        max_length=32, label="EIC or EAN code", help_text="e.g. 10X1001A1001A361 or 8712345678906"
    )
    roles = forms.MultipleChoiceField(
        choices=APPLICABLE_ROLES, widget=forms.CheckboxSelectMultiple, label="Roles applied for"
    )

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
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

    def signup(self, request, user):
        user.first_name = self.cleaned_data["first_name"]
        user.last_name = self.cleaned_data["last_name"]
        user.save(update_fields=["first_name", "last_name"])
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
    organisation = forms.IntegerField(required=False)
