"""Automations point at the scripts app's Script and ScriptVersion now (same tables: state only)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0003_configured_by"),
        ("scripts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="bulkrun",
                    name="script",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="scripts.script",
                    ),
                ),
                migrations.AlterField(
                    model_name="bulkrun",
                    name="version",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="pinned version; empty = the latest saved version at each run",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="scripts.scriptversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="deployment",
                    name="script",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="scripts.script",
                    ),
                ),
                migrations.AlterField(
                    model_name="deployment",
                    name="version",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="pinned version; empty = the latest saved version at each run",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="scripts.scriptversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="schedule",
                    name="script",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="scripts.script",
                    ),
                ),
                migrations.AlterField(
                    model_name="schedule",
                    name="version",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="pinned version; empty = the latest saved version at each run",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="scripts.scriptversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="trigger",
                    name="script",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="scripts.script",
                    ),
                ),
                migrations.AlterField(
                    model_name="trigger",
                    name="version",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="pinned version; empty = the latest saved version at each run",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="scripts.scriptversion",
                    ),
                ),
            ],
        ),
    ]
