"""Runs of a deployed listener carry the deployment's listener key."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0002_script_version_fk"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="listener_key",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
