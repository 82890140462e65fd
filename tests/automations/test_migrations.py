"""Automations made before their runs acted for who configured them keep
running for their creator."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("automations", "0002_deployment_listener_key")]
AFTER = [("automations", "0003_configured_by")]


@pytest.mark.django_db(transaction=True)
def test_existing_automations_are_configured_by_their_creator():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        user = old.get_model("auth", "User").objects.create(username="maker")
        script = old.get_model("ide", "Script").objects.create(name="s", created_by=user)
        common = {"script": script, "created_by": user}
        old.get_model("automations", "Schedule").objects.create(
            name="a", cron="0 3 * * *", **common
        )
        old.get_model("automations", "Trigger").objects.create(
            name="b", kind="new_device", **common
        )
        old.get_model("automations", "Deployment").objects.create(name="c", **common)
        old.get_model("automations", "BulkRun").objects.create(name="d", **common)
        old.get_model("automations", "Schedule").objects.create(
            name="e", cron="0 3 * * *", script=script
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    new = executor.loader.project_state(AFTER).apps
    rows = []
    for model in ("Schedule", "Trigger", "Deployment", "BulkRun"):
        automations = new.get_model("automations", model).objects.order_by("name")
        rows += [
            (a.name, a.configured_by_id == a.created_by_id, a.configured_by_id is not None)
            for a in automations
        ]
    assert sorted(rows) == [
        ("a", True, True),
        ("b", True, True),
        ("c", True, True),
        ("d", True, True),
        ("e", True, False),
    ]
