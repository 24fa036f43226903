from enum import StrEnum


class SettlementErrorCode(StrEnum):
    ROLE = "role_required"
    INVALID_FILE = "invalid_meter_file"
    PROGNOSIS_FROZEN = "prognosis_frozen"
    INVALID_PROGNOSIS = "invalid_prognosis"
    PERIOD_LOCKED = "period_locked"
    INVALID_STATE = "invalid_state"
    INVALID_PERIOD = "invalid_period"
    DISPUTE = "invalid_dispute"
    LOCK_REFUSED = "period_lock_refused"
    INVALID_AGREEMENT = "invalid_agreement"
    INVALID_TEMPERATURE = "invalid_temperature"
    UNBALANCED = "settlement_unbalanced"
    STALE = "settlement_stale"
    REASON_REQUIRED = "reason_required"
