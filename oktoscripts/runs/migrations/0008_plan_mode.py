"""Runs in plan mode (writes intercepted and planned) and runs applying a plan."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0007_replay_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="mode",
            field=models.CharField(
                choices=[("run", "Run"), ("plan", "Plan"), ("apply", "Apply")],
                default="run",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="run",
            name="plan_of",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="applications",
                to="runs.run",
            ),
        ),
    ]
