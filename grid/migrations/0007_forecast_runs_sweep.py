from django.db import migrations

SWEEP = ("Recover stuck forecast runs", "grid.forecast_runs_sweep")


def create_sweep_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(name=SWEEP[0], defaults={"task": SWEEP[1], "interval": interval})


def remove_sweep_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP[0]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("grid", "0006_forecast_runs"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_sweep_schedule, remove_sweep_schedule)]
