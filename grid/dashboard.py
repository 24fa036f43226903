"""Dashboard panels: the DSO's zones and prequalification queue, the ESP's assets and portfolios."""

from accounts.models import Role
from grid import selectors, services
from grid.views import map_settings, own_network_geojson


def panels(request, actor) -> list[dict]:
    result = []
    if actor.has_role(Role.DSO):
        zones = list(selectors.zone_asset_counts(dso=actor.organisation))
        latest_run = selectors.power_flow_runs_get_visible(actor=actor).first()
        result.append(
            {
                "template": "grid/_panel_dso.html",
                "zones": zones,
                "zones_geojson": services.grid_locations_as_geojson(
                    selectors.grid_locations_get_visible(actor=actor).filter(dso=actor.organisation)
                ),
                "pending": sum(zone.pending_count for zone in zones),
                "latest_run": latest_run,
                "network_geojson": own_network_geojson(actor),
                "map_settings": map_settings(),
            }
        )
    if actor.has_role(Role.ESP):
        assets = list(selectors.assets_get_owned(actor=actor))
        result.append(
            {
                "template": "grid/_panel_esp.html",
                "asset_count": len(assets),
                "approved": sum(a.prequalification == "approved" for a in assets),
                "pending": sum(a.prequalification == "pending" for a in assets),
                "outside": sum(a.grid_location_id is None for a in assets),
                "portfolios": list(
                    selectors.portfolios_get_visible(actor=actor).filter(owner=actor.organisation)
                ),
                "assets_geojson": services.assets_as_geojson(assets),
                "zones_geojson": services.grid_locations_as_geojson(
                    selectors.grid_locations_get_visible(actor=actor).filter(
                        pk__in={a.grid_location_id for a in assets}
                    )
                ),
                "map_settings": map_settings(),
            }
        )
    return result
