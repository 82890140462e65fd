"""A script's limits stay within the platform's unless an Admin raises them,
and no run gets more than the hard caps, whatever is stored."""

from __future__ import annotations

import pytest
from django.test import Client

from ide.models import ApiToken
from oktoscripts.lua.limits import Limits
from oktoscripts.runs.caps import HARD_CAPS
from oktoscripts.scripts import editing as scripts
from oktoscripts.scripts.models import Script

MIB = 1024 * 1024


def patch(user, script_id: int, body: dict):  # noqa: ANN001, ANN201
    _, raw = ApiToken.issue(user, "test")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    return client.patch(f"/api/scripts/{script_id}", body, content_type="application/json")


@pytest.fixture
def script(users) -> Script:
    return scripts.create_script(users["author"], "heavy", "return 1")


def test_an_author_cannot_raise_a_scripts_limits_above_the_platforms(users, script):
    refused = patch(users["author"], script.pk, {"limits": {"memory_bytes": 1e12}})
    assert refused.status_code == 400
    assert refused.json()["error"] == (
        "Memory limit: 953,674.316406 MiB is above the platform's limit of 256 MiB; only an "
        "Admin may raise a script's limits (up to 16,384 MiB)."
    )
    refused = patch(users["author"], script.pk, {"limits": {"wall_seconds": 1e9}})
    assert refused.status_code == 400
    assert "above the platform's limit of 600 s" in refused.json()["error"]
    script.refresh_from_db()
    assert script.limits == {}

    lowered = patch(
        users["author"], script.pk, {"limits": {"wall_seconds": 5, "memory_bytes": 64 * MIB}}
    )
    assert lowered.status_code == 200
    assert lowered.json()["limits"] == {"wall_seconds": 5, "memory_bytes": 64 * MIB}


def test_the_settings_page_form_refuses_it_too(client_for, script):
    author = client_for("author")
    response = author.post(
        f"/scripts/{script.pk}/settings",
        {
            "name": "heavy",
            "folder": "",
            "tags": "",
            "description": "",
            "runtime": "lua51",
            "wall_seconds": "",
            "memory_bytes": "1000000",
            "instructions": "",
        },
        follow=True,
    )
    assert "above the platform&#x27;s limit of 256 MiB" in response.content.decode()
    script.refresh_from_db()
    assert script.limits == {}


def test_an_admin_may_raise_them_up_to_the_hard_caps(users, script):
    raised = patch(
        users["admin"], script.pk, {"limits": {"memory_bytes": 4096 * MIB, "wall_seconds": 7200}}
    )
    assert raised.status_code == 200, raised.content
    over = patch(users["admin"], script.pk, {"limits": {"memory_bytes": 1e12}})
    assert over.status_code == 400
    assert over.json()["error"] == (
        "Memory limit: 953,674.316406 MiB is above the hard cap of 16,384 MiB."
    )
    # An Author may still edit the script (and its other limits): what the Admin
    # raised stays.
    edited = patch(
        users["author"],
        script.pk,
        {
            "description": "nightly",
            "limits": {"memory_bytes": 4096 * MIB, "wall_seconds": 7200, "instructions": 5_000_000},
        },
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["limits"]["memory_bytes"] == 4096 * MIB
    # ... but not raise one of them further.
    assert (
        patch(users["author"], script.pk, {"limits": {"memory_bytes": 8192 * MIB}}).status_code
        == 400
    )


def test_runs_get_at_most_the_hard_caps_whatever_is_stored(users, script, nats_url):
    """A value written to the database by other means (or before the caps) is cut
    to the cap: in the run the IDE stores, and in what a worker builds from any Run."""
    from oktoscripts.bindings.services import Services
    from oktoscripts.runs.principal import Principal
    from oktoscripts.runs.store import ClaimedRun
    from oktoscripts.runs.worker import Worker, WorkerOptions
    from oktoscripts.scripts.start import Origin, Source, start_run

    Script.objects.filter(pk=script.pk).update(limits={"memory_bytes": 10**12, "wall_seconds": 1e9})
    script.refresh_from_db()
    run = start_run(
        Source.saved(script.latest, script), user=users["operator"], args={}, origin=Origin("user")
    )
    assert run.limits["memory_bytes"] == HARD_CAPS.memory_bytes
    assert run.limits["wall_seconds"] == HARD_CAPS.wall_seconds

    stored = ClaimedRun(
        "3f5d4e0a-0000-4000-8000-000000000001",
        "x",
        "return 1",
        {},
        "lua51",
        {"memory_bytes": 10**12, "instructions": 10**15},
        "",
    )
    worker = Worker(None, Services(), WorkerOptions(1, 1, 1.0, 5.0))
    lua = worker._lua_run(stored, Principal.nobody())
    assert lua.limits == Limits.with_overrides(
        {"memory_bytes": HARD_CAPS.memory_bytes, "instructions": HARD_CAPS.instructions}
    )
