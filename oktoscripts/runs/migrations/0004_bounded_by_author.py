"""Runs an automation started on "the latest saved version" are bounded by its author."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0003_listener_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="bounded_by_author",
            field=models.BooleanField(default=False),
        ),
    ]
