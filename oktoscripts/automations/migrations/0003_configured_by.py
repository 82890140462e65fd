"""Automations record who last configured them: their runs act for that user.

Existing automations were configured by whoever created them.
"""

from django.conf import settings
from django.db import migrations, models
from django.db.models import F

MODELS = ("schedule", "bulkrun", "trigger", "deployment")


def configured_by_creator(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
    for name in MODELS:
        apps.get_model("automations", name).objects.update(configured_by=F("created_by"))


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0002_deployment_listener_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        *(
            migrations.AddField(
                model_name=name,
                name="configured_by",
                field=models.ForeignKey(
                    blank=True,
                    null=True,
                    on_delete=models.deletion.SET_NULL,
                    related_name="+",
                    to=settings.AUTH_USER_MODEL,
                ),
            )
            for name in MODELS
        ),
        migrations.RunPython(configured_by_creator, migrations.RunPython.noop),
    ]
