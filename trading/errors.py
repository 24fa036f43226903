from enum import StrEnum


class TradingErrorCode(StrEnum):
    ROLE = "role_required"
    GATE_CLOSED = "gate_closed"
    NO_SESSION = "no_open_session"
    INVALID_QUANTITIES = "invalid_quantities"
    INVALID_PRICE = "invalid_price"
    INVALID_REACTIVE = "invalid_reactive_range"
    INVALID_PTU = "invalid_ptu"
    ASSET_NOT_TRADABLE = "asset_not_tradable"
    WRONG_ZONE = "wrong_zone"
    ABOVE_CAPABILITY = "above_capability"
    ZONE_CONGESTED = "zone_congested"
    INVALID_BLOCK = "invalid_block_rules"
    NOT_CANCELLABLE = "not_cancellable"
    INVALID_STATE = "invalid_state"
    INVALID_IMPORT = "invalid_import"
    INVALID_AGREEMENT = "invalid_agreement"
    PRODUCT_MISMATCH = "product_mismatch"
    INVALID_VALIDITY = "invalid_validity"
    EXCLUDED = "excluded_from_clearing"
    PRODUCT_RULE = "product_rule"
