"""Bulk runs in plan mode: the whole filter planned first."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0005_staged_rollouts"),
    ]

    operations = [
        migrations.AddField(
            model_name="bulkrun",
            name="mode",
            field=models.CharField(default="run", max_length=8),
        ),
    ]
