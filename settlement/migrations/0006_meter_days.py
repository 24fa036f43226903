"""One row per asset, source and UTC day instead of one per reading; existing readings and their history move over.

Each distinct moment at which an old (asset, source, UTC day) changed becomes a version of the day row holding the
readings current at that moment, so the history of corrections is kept. Readings off a PTU boundary (never
accepted by the upload services, and left out by every reader) are not carried over.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from settlement import meterdays

BATCH = 2000


def _versions(readings):
    """The day's states over time: [(created_at, upload id, {index: watts})], one per moment it changed."""
    moments = sorted({r[3] for r in readings})
    states = []
    for moment in moments:
        values = {
            index: watts
            for index, watts, _upload, created, superseded in readings
            if created <= moment and (superseded is None or superseded > moment)
        }
        upload = next((r[2] for r in readings if r[3] == moment and r[2] is not None), None)
        if values and (not states or states[-1][2] != values):
            states.append((moment, upload, values))
    return states


def readings_to_days(apps, schema_editor):
    MeterReading = apps.get_model("settlement", "MeterReading")
    MeterDay = apps.get_model("settlement", "MeterDay")
    pending = []

    def flush_day(key, readings):
        asset_id, source, day = key
        states = _versions(readings)
        for number, (created, upload, values) in enumerate(states, start=1):
            watts = meterdays.empty()
            watts[list(values)] = list(values.values())
            superseded = states[number][0] if number < len(states) else None
            pending.append(
                MeterDay(
                    asset_id=asset_id,
                    source=source,
                    day=day,
                    watts=meterdays.pack(watts),
                    readings=len(values),
                    version=number,
                    upload_id=upload,
                    created_at=created,
                    superseded_at=superseded,
                )
            )
        if len(pending) >= BATCH:
            MeterDay.objects.bulk_create(pending)
            pending.clear()

    key, readings = None, []
    rows = MeterReading.objects.order_by("asset_id", "source", "ptu_start", "version").values_list(
        "asset_id", "source", "ptu_start", "kw", "upload_id", "created_at", "superseded_at"
    )
    for asset_id, source, moment, kw, upload, created, superseded in rows.iterator(chunk_size=BATCH):
        try:
            day, index = meterdays.position(moment)
        except ValueError:
            continue
        if (asset_id, source, day) != key:
            if readings:
                flush_day(key, readings)
            key, readings = (asset_id, source, day), []
        readings.append((index, meterdays.watts_of(kw), upload, created, superseded))
    if readings:
        flush_day(key, readings)
    if pending:
        MeterDay.objects.bulk_create(pending)


def days_to_readings(apps, schema_editor):
    """Back to one row per reading: every version of a day becomes readings with that version's times."""
    MeterReading = apps.get_model("settlement", "MeterReading")
    MeterDay = apps.get_model("settlement", "MeterDay")
    pending = []
    for row in MeterDay.objects.order_by("pk").iterator(chunk_size=BATCH):
        values = meterdays.unpack(row.watts)
        for index in range(meterdays.PTUS_PER_DAY):
            if values[index] != meterdays.MISSING:
                pending.append(
                    MeterReading(
                        asset_id=row.asset_id,
                        source=row.source,
                        ptu_start=meterdays.moment_of(row.day, index),
                        kw=meterdays.kw_of(values[index]),
                        version=row.version,
                        upload_id=row.upload_id,
                        created_at=row.created_at,
                        superseded_at=row.superseded_at,
                    )
                )
        if len(pending) >= BATCH * 10:
            MeterReading.objects.bulk_create(pending)
            pending.clear()
    MeterReading.objects.bulk_create(pending)


class Migration(migrations.Migration):

    dependencies = [
        ('grid', '0005_network_model_load'),
        ('settlement', '0005_zonetemperature'),
    ]

    operations = [
        migrations.CreateModel(
            name='MeterDay',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('source', models.CharField(choices=[('esp', 'ESP (sub-meter)'), ('dso', 'DSO (connection point)')], default='esp', max_length=4)),
                ('day', models.DateField(help_text='UTC day (always 96 PTUs)')),
                ('watts', models.BinaryField(help_text='96 little-endian int64 watts; MISSING where no reading')),
                ('readings', models.PositiveSmallIntegerField(help_text='How many of the 96 PTUs hold a reading')),
                ('version', models.PositiveIntegerField(default=1)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('superseded_at', models.DateTimeField(blank=True, null=True)),
                ('asset', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='meter_days', to='grid.flexasset')),
                ('upload', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='meter_days', to='settlement.meterupload')),
            ],
            options={
                'ordering': ['asset', 'source', 'day', '-version'],
            },
        ),
        migrations.AddConstraint(
            model_name='meterday',
            constraint=models.UniqueConstraint(condition=models.Q(('superseded_at__isnull', True)), fields=('asset', 'source', 'day'), name='one_current_meter_day'),
        ),
        migrations.AddConstraint(
            model_name='meterday',
            constraint=models.UniqueConstraint(fields=('asset', 'source', 'day', 'version'), name='one_meter_day_version'),
        ),
        migrations.RunPython(readings_to_days, days_to_readings),
        migrations.DeleteModel(
            name='MeterReading',
        ),
    ]
