"""Debug runs (issue 16): run with the debugger, driven from the IDE."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0008_plan_mode"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="debug",
            field=models.BooleanField(default=False),
        ),
    ]
