"""Template context the whole portal uses."""

from flexmarket.localtime import display_zone


def time_zone(request) -> dict:
    """Templates name the zone their times are in: `{{ TIME_ZONE_NAME }}` (pages render times in it)."""
    return {"TIME_ZONE_NAME": display_zone().key}
