"""Scripts, versions, platform settings and the audit log move from the ``ide`` app
to this one without touching their tables (they keep their ``ide_*`` names): the
models are created here in Django's state only, and ``ide`` 0005 forgets them.
The content types move too, so the role permissions (which hang on Script) and
every group's grant of them survive, as ``scripts.<capability>``."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MODELS = ("script", "scriptversion", "auditevent", "platformsettings")


def _move_content_types(apps: object, source: str, target: str) -> None:
    """Relabel the models' content types (with their permissions and grants).
    A type already made under the new label (by a test database's setup, say)
    gives way to the one that carries the installation's grants."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        old = ContentType.objects.filter(app_label=source, model=model).first()
        if old is None:
            continue
        ContentType.objects.filter(app_label=target, model=model).delete()
        old.app_label = target
        old.save(update_fields=["app_label"])


def forwards(apps: object, schema_editor: object) -> None:
    _move_content_types(apps, "ide", "scripts")


def backwards(apps: object, schema_editor: object) -> None:
    _move_content_types(apps, "scripts", "ide")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("ide", "0004_platform_settings"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "created",
                            models.DateTimeField(db_index=True, default=django.utils.timezone.now),
                        ),
                        ("actor_name", models.CharField(max_length=150)),
                        ("action", models.CharField(db_index=True, max_length=60)),
                        ("target", models.CharField(blank=True, default="", max_length=300)),
                        ("details", models.JSONField(blank=True, default=dict)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "ide_auditevent",
                        "ordering": ["-created", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="PlatformSettings",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("instructions", models.BigIntegerField(blank=True, null=True)),
                        ("memory_bytes", models.BigIntegerField(blank=True, null=True)),
                        ("wall_seconds", models.FloatField(blank=True, null=True)),
                        ("output_bytes", models.BigIntegerField(blank=True, null=True)),
                        (
                            "default_runtime",
                            models.CharField(
                                choices=[("lua51", "Lua 5.1"), ("luajit", "LuaJIT")],
                                default="lua51",
                                max_length=10,
                            ),
                        ),
                        ("updated", models.DateTimeField(blank=True, null=True)),
                        (
                            "updated_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "platform settings",
                        "verbose_name_plural": "platform settings",
                        "db_table": "ide_platformsettings",
                    },
                ),
                migrations.CreateModel(
                    name="Script",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200, unique=True)),
                        (
                            "folder",
                            models.CharField(blank=True, db_index=True, default="", max_length=200),
                        ),
                        (
                            "tags",
                            models.CharField(
                                blank=True, default="", help_text="space-separated", max_length=400
                            ),
                        ),
                        ("description", models.CharField(blank=True, default="", max_length=500)),
                        (
                            "runtime",
                            models.CharField(
                                choices=[("lua51", "Lua 5.1"), ("luajit", "LuaJIT")],
                                default="lua51",
                                max_length=10,
                            ),
                        ),
                        ("limits", models.JSONField(blank=True, default=dict)),
                        ("deleted", models.BooleanField(default=False)),
                        ("deleted_at", models.DateTimeField(blank=True, null=True)),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        ("updated", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "ide_script",
                        "ordering": ["folder", "name"],
                        "permissions": [
                            ("read", "Read scripts, runs and devices"),
                            ("edit_scripts", "Create and edit scripts"),
                            ("run_scripts", "Run and cancel scripts"),
                            ("administer", "Manage users, roles, device credentials and settings"),
                        ],
                        "default_permissions": (),
                    },
                ),
                migrations.CreateModel(
                    name="ScriptVersion",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("number", models.PositiveIntegerField()),
                        ("content", models.TextField()),
                        ("sha256", models.CharField(max_length=64)),
                        ("message", models.CharField(blank=True, default="", max_length=500)),
                        ("created", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "author",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "script",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="versions",
                                to="scripts.script",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "ide_scriptversion",
                        "ordering": ["script", "-number"],
                    },
                ),
                migrations.AddField(
                    model_name="script",
                    name="latest",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="scripts.scriptversion",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="scriptversion",
                    constraint=models.UniqueConstraint(
                        fields=("script", "number"), name="version_number_unique"
                    ),
                ),
                migrations.AddIndex(
                    model_name="script",
                    index=models.Index(
                        fields=["deleted", "folder", "name"], name="ide_script_deleted_6e2750_idx"
                    ),
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
