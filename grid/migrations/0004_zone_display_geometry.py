from django.db import migrations, models


def fill_display_geometry(apps, schema_editor):
    """Simplified outlines for existing zones (maps show them instead of the full polygon)."""
    from django.conf import settings
    from shapely.geometry import shape

    from grid.geometry import simplify_for_display

    GridLocation = apps.get_model("grid", "GridLocation")
    for zone in GridLocation.objects.all().iterator():
        try:
            outline = shape(zone.geometry)
        except Exception:  # an outline stored before validation was strict: keep showing it as it is
            continue
        zone.display_geometry = simplify_for_display(
            outline, max_vertices=settings.FLEXMARKET_ZONE_DISPLAY_MAX_VERTICES
        )
        zone.save(update_fields=["display_geometry"])


class Migration(migrations.Migration):
    dependencies = [
        ("grid", "0003_power_flow_run_lease_and_sweep"),
    ]

    operations = [
        migrations.AddField(
            model_name="gridlocation",
            name="display_geometry",
            field=models.JSONField(
                blank=True,
                help_text="`geometry` simplified for maps (FLEXMARKET_ZONE_DISPLAY_MAX_VERTICES); empty: use geometry.",
                null=True,
            ),
        ),
        migrations.RunPython(fill_display_geometry, migrations.RunPython.noop),
    ]
