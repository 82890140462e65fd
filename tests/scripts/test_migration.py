"""An installation made when scripts lived in the ``ide`` app moves to the
``scripts`` app with every row, link and role grant intact."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The state just before the move, and the app whose migrations make it.
BEFORE = [
    ("ide", "0004_platform_settings"),
    ("runs", "0004_bounded_by_author"),
    ("automations", "0003_configured_by"),
]


def _make_old_installation(apps) -> None:
    """Rows of every moved model, made with the models as they were."""
    content_type, _ = apps.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="ide", model="script"
    )
    grants = [
        apps.get_model("auth", "Permission").objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": codename}
        )[0]
        for codename in ("read", "run_scripts")
    ]
    # As the roles migration made it (a transactional test before this one may have
    # flushed it).
    operator, _ = apps.get_model("auth", "Group").objects.get_or_create(name="Operator")
    operator.permissions.set(grants)
    user = apps.get_model("auth", "User").objects.create(username="op")
    user.groups.add(operator)
    Script = apps.get_model("ide", "Script")
    script = Script.objects.create(name="inventory", created_by=user, limits={"wall_seconds": 5})
    version = apps.get_model("ide", "ScriptVersion").objects.create(
        script=script, number=1, content="return 1", sha256="x", author=user
    )
    Script.objects.filter(pk=script.pk).update(latest=version)
    apps.get_model("ide", "PlatformSettings").objects.create(pk=1, wall_seconds=42.0)
    apps.get_model("ide", "AuditEvent").objects.create(
        actor=user, actor_name="op", action="script.create", target="inventory"
    )
    apps.get_model("runs", "Run").objects.create(
        script_name="inventory",
        code="return 1",
        script_version=version,
        started_by="user",
        user=user,
    )
    apps.get_model("automations", "Schedule").objects.create(
        name="nightly", cron="0 3 * * *", script=script, version=version, created_by=user
    )


@pytest.mark.django_db(transaction=True)
def test_an_installation_from_before_the_scripts_app_keeps_its_data_and_roles():
    executor = MigrationExecutor(connection)
    executor.migrate([*BEFORE, ("scripts", None)])
    try:
        _make_old_installation(executor.loader.project_state(BEFORE).apps)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType

    from oktoscripts.automations.models import Schedule
    from oktoscripts.runs.models import Run
    from oktoscripts.scripts.models import AuditEvent, PlatformSettings, Script

    ContentType.objects.clear_cache()
    script = Script.objects.select_related("latest").get(name="inventory")
    assert (script.latest.content, script.limits) == ("return 1", {"wall_seconds": 5})
    assert Run.objects.get().script_version.script == script
    assert Schedule.objects.get().version == script.latest
    assert PlatformSettings.load().wall_seconds == 42.0
    # LuaJIT became the default runtime: the platform's default follows, scripts keep theirs.
    assert PlatformSettings.load().default_runtime == "luajit"
    assert script.runtime == "lua51"
    assert AuditEvent.objects.get().target == "inventory"
    # The Operator group's grants moved with the permissions' content type.
    user = User.objects.get(username="op")
    assert user.has_perm("scripts.run_scripts") and user.has_perm("scripts.read")
    assert not user.has_perm("scripts.edit_scripts")
    assert not ContentType.objects.filter(app_label="ide", model="script").exists()
