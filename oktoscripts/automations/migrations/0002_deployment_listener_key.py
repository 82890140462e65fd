"""Deployments name the event consumers of their runs (a key of their own each)."""

from django.db import migrations, models

import oktoscripts.automations.models


def give_each_a_key(apps, schema_editor) -> None:  # noqa: ANN001 - migration signature
    deployment = apps.get_model("automations", "Deployment")
    for row in deployment.objects.all().only("pk"):
        deployment.objects.filter(pk=row.pk).update(
            listener_key=oktoscripts.automations.models.new_listener_key()
        )


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="listener_key",
            field=models.CharField(
                default=oktoscripts.automations.models.new_listener_key, max_length=64
            ),
        ),
        migrations.RunPython(give_each_a_key, migrations.RunPython.noop),
    ]
