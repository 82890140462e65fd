"""Replays: a run answering its device calls from another run's recording."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0009_run_debug"),
    ]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="mode",
            field=models.CharField(
                choices=[
                    ("run", "Run"),
                    ("plan", "Plan"),
                    ("apply", "Apply"),
                    ("replay", "Replay"),
                ],
                default="run",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="replay_of",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="replays",
                to="runs.run",
            ),
        ),
    ]
