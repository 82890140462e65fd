"""Scripts, versions, platform settings and the audit log belong to the scripts app now
(oktoscripts/scripts/migrations/0001_initial.py): forgotten here, tables kept."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("ide", "0004_platform_settings"),
        ("automations", "0004_scripts_in_scripts_app"),
        ("runs", "0005_script_version_in_scripts_app"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name="platformsettings",
                    name="updated_by",
                ),
                migrations.RemoveField(
                    model_name="script",
                    name="created_by",
                ),
                migrations.RemoveField(
                    model_name="script",
                    name="latest",
                ),
                migrations.RemoveField(
                    model_name="scriptversion",
                    name="script",
                ),
                migrations.RemoveField(
                    model_name="scriptversion",
                    name="author",
                ),
                migrations.DeleteModel(
                    name="AuditEvent",
                ),
                migrations.DeleteModel(
                    name="PlatformSettings",
                ),
                migrations.DeleteModel(
                    name="Script",
                ),
                migrations.DeleteModel(
                    name="ScriptVersion",
                ),
            ],
        ),
    ]
