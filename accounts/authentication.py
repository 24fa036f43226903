"""`Authorization: Api-Key <key>` for the REST API (FLEXGRID API-TRQT_01)."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from accounts.models import Organisation
from accounts.selectors import api_key_find_active
from accounts.services import api_key_touch

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates as the key's creator, acting for the key's organisation (request.auth is the key)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != KEYWORD.lower():
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("No API key given after 'Api-Key'.")
        key = api_key_find_active(raw_key=raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        if key.organisation.status != Organisation.Status.APPROVED:
            raise exceptions.AuthenticationFailed(
                f"The organisation is {key.organisation.get_status_display().lower()}."
            )
        if not key.created_by.is_active:
            raise exceptions.AuthenticationFailed("The user who created this key is deactivated.")
        api_key_touch(api_key=key)
        return key.created_by, key

    def authenticate_header(self, request):
        return KEYWORD
