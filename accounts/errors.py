from enum import StrEnum


class AccountsErrorCode(StrEnum):
    ORGANISATION_EXISTS = "organisation_exists"
    INVALID_CODE = "invalid_party_code"
    INVALID_ROLE = "invalid_role"
    INVALID_STATE = "invalid_state"
    REASON_REQUIRED = "reason_required"
    NOT_ADMIN = "not_organisation_admin"
    NOT_APPROVED = "organisation_not_approved"
    ROLE_REQUIRED = "role_required"
    INVITATION_INVALID = "invitation_invalid"
    ALREADY_MEMBER = "already_member"
    EXPIRY_IN_PAST = "expiry_in_past"
