from django.db import migrations, models

# Existing notifications get a category from where their link points (those without a link stay "account").
LINK_CATEGORIES = [
    ("/grid/", "grid"),
    ("/admin/trading/market/", "grid"),  # "new zone: add it to the markets" to the FMO
    ("/trading/", "trading"),
    ("/settlement/", "settlement"),
]


def categorise(apps, schema_editor):
    Notification = apps.get_model("accounts", "Notification")
    for prefix, category in LINK_CATEGORIES:
        Notification.objects.filter(link__startswith=prefix, category="account").update(category=category)
    Notification.objects.filter(title__startswith="Dispute on ").update(category="settlement")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_audit_events_append_only")]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="category",
            field=models.CharField(
                choices=[
                    ("account", "Account"),
                    ("grid", "Grid and assets"),
                    ("trading", "Trading"),
                    ("settlement", "Settlement"),
                ],
                default="account",
                max_length=20,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(categorise, migrations.RunPython.noop),
    ]
