from enum import StrEnum


class GridErrorCode(StrEnum):
    NOT_DSO = "not_dso"
    NOT_ESP = "not_esp"
    INVALID_GEOMETRY = "invalid_geometry"
    OVERLAP = "zone_overlap"
    CODE_TAKEN = "code_taken"
    INVALID_STATUS = "invalid_status"
    INVALID_IMPORT = "invalid_import"
    INVALID_ASSET = "invalid_asset"
    NOT_ZONE_DSO = "not_zone_dso"
    REASON_REQUIRED = "reason_required"
    INVALID_STATE = "invalid_state"
    PORTFOLIO_INVALID = "portfolio_invalid"
    NETWORK_INVALID = "network_invalid"
    ARCHIVED = "archived"
    EAN_TAKEN = "ean_taken"
    NOT_FMO = "not_fmo"
    FORECAST_INVALID = "forecast_invalid"
    MAPPING_INVALID = "mapping_invalid"
    CHECKLIST_INCOMPLETE = "checklist_incomplete"
