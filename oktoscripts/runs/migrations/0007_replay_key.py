"""Runs that may be run again name their device calls the same in each attempt."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0006_luajit_default"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="replay_key",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("replay_key", ""), _negated=True),
                fields=["replay_key"],
                name="run_replay_key",
            ),
        ),
    ]
