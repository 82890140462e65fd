"""Every way a run starts goes through one action (oktoscripts/scripts/start.py):
the IDE, REST, ``runscript --remote``, schedules, event triggers, bulk runs and
deployed listeners give their runs the same limits (script within the Settings
page within the hard caps), refuse the same arguments with the same words, and
leave the same audit event. No worker runs here: the runs stay queued, as
stored by the action."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from oktoscripts.runs.models import Run
from oktoscripts.scripts.models import AuditEvent, PlatformSettings, Script, content_hash

pytestmark = pytest.mark.django_db(transaction=True)

PLATFORM = {"wall_seconds": 7.0, "output_bytes": 65536}
SCRIPT_OWN = {"instructions": 5_000_000}


def expected_limits() -> dict:
    from oktoscripts.lua.limits import Limits

    builtin = Limits.defaults()
    return {
        "instructions": 5_000_000,
        "memory_bytes": builtin.memory_bytes,
        "wall_seconds": 7.0,
        "output_bytes": 65536,
    }


def _setup(make_script, operator) -> Script:
    PlatformSettings.load()
    PlatformSettings.objects.update(**PLATFORM)
    script = make_script("inventory.lua", "return ...")
    Script.objects.filter(pk=script.pk).update(limits=SCRIPT_OWN)
    return Script.objects.select_related("latest").get(pk=script.pk)


def _api(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def _post(client: Client, path: str, body: dict):
    return client.post(path, json.dumps(body), content_type="application/json")


async def _wait_for_runs(count: int, timeout: float = 20.0) -> list[Run]:
    deadline = time.monotonic() + timeout
    while (n := await Run.objects.acount()) < count:
        assert time.monotonic() < deadline, f"{n} of {count} runs started"
        await asyncio.sleep(0.05)
    return [r async for r in Run.objects.order_by("created")]


async def _runscript_remote(tmp_path, nc, *args: str) -> str:
    """``runscript --remote`` until its run is stored (then cancelled: no worker here)."""
    from oktoscripts.management.commands.runscript import parse_args, run_remote
    from oktoscripts.runs.submit import acancel_run

    before = {r.pk async for r in Run.objects.all()}
    task = asyncio.create_task(
        run_remote(
            "return 1", "file.lua", parse_args(list(args)), "lua51", {"instructions": 5_000_000}
        )
    )
    deadline = time.monotonic() + 20
    while not (new := [r.pk async for r in Run.objects.exclude(pk__in=before)]):
        assert time.monotonic() < deadline and not task.done(), "runscript stored no run"
        await asyncio.sleep(0.05)
    await acancel_run(str(new[0]), nc=nc)
    await task
    return str(new[0])


async def test_every_entry_point_gives_the_same_limits_and_audit(
    make_script, operator, registry, nc, automation_service, tmp_path
):
    from oktoscripts.automations import bulk, deployments, schedules
    from oktoscripts.automations.models import Schedule, ScheduleTick, Trigger
    from tests.automations.test_bulk import register
    from tests.automations.test_triggers import publish

    script = await sync_to_async(_setup)(make_script, operator)
    client = await sync_to_async(_api)(operator)
    # The IDE's run button and REST.
    response = await sync_to_async(_post)(client, "/api/runs", {"script_id": script.pk})
    assert response.status_code == 201, response.content
    first = response.json()["id"]
    # The run page's "run again".
    response = await sync_to_async(client.post)(f"/runs/{first}/rerun")
    assert response.status_code == 302 and response.url != f"/runs/{first}/", response.url
    # The command line.
    await _runscript_remote(tmp_path, nc, "serial=CLI-1")
    # A schedule's tick.
    schedule = await Schedule.objects.acreate(
        name="s", cron="0 3 * * *", script=script, created_by=operator, configured_by=operator
    )
    claim = schedules.Claim(schedule.pk, datetime.now(UTC), True, 0, "started")
    await ScheduleTick.objects.acreate(schedule=schedule, tick=claim.tick, outcome="started")
    assert await schedules.fire(claim, nc)
    # A bulk run on two devices, a deployment, a trigger on a CWMP event.
    await sync_to_async(register)(registry, 2)
    await sync_to_async(bulk.create)(
        script=script,
        version=None,
        args={},
        concurrency=2,
        device_filter={"vendor": "Acme"},
        user=operator,
        registry=registry,
    )
    await sync_to_async(deployments.create)(
        name="d", script=script, version=script.latest, args={}, user=operator
    )
    await Trigger.objects.acreate(
        name="t",
        kind="cwmp_event",
        event="1",
        script=script,
        created_by=operator,
        configured_by=operator,
    )
    await automation_service()
    await asyncio.sleep(0.5)  # the trigger's consumer exists
    await publish(nc, "ACME-001", "1 BOOT")

    runs = await _wait_for_runs(8)  # REST, rerun, cli, schedule, 2 bulk, deployment, trigger
    assert sorted(r.started_by for r in runs) == ["cli", "event", "schedule", *["user"] * 5]
    for run in runs:
        assert run.limits == expected_limits(), (run.started_by, run.trigger)
    audited = {e.details["run"]: e async for e in AuditEvent.objects.filter(action="run.start")}
    assert set(audited) == {str(r.pk) for r in runs}
    for run in runs:
        event = audited[str(run.pk)]
        assert event.details["started_by"] == run.started_by
        assert event.target == run.script_name


def test_one_argument_rule_for_runs_and_automations(make_script, operator, tmp_path):
    """Tables are arguments everywhere (a trigger passes its event as one); too
    many arguments are refused in the same words by every entry point."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    script = _setup(make_script, operator)
    client = _api(operator)
    table = {"device": {"serial": "X", "ports": [1, 2]}}
    response = _post(client, "/api/runs", {"script_id": script.pk, "args": table})
    assert response.status_code == 201, response.content
    assert Run.objects.get(pk=response.json()["id"]).args == table

    too_many = {f"a{n}": n for n in range(101)}
    refusals = set()
    for path, extra in (
        ("/api/runs", {}),
        ("/api/schedules", {"name": "s", "cron": "0 3 * * *"}),
        ("/api/deployments", {}),
        ("/api/triggers", {"name": "t", "kind": "new_device"}),
    ):
        response = _post(client, path, {"script_id": script.pk, "args": too_many, **extra})
        assert response.status_code == 400, (path, response.content)
        refusals.add(response.json()["error"])
    assert refusals == {"at most 100 arguments (got 101)"}

    lua = tmp_path / "x.lua"
    lua.write_text("return 1")
    with pytest.raises(CommandError) as refused:
        call_command("runscript", str(lua), "--remote", "--arg", "x:=NaN")
    assert "arguments must be JSON values" in str(refused.value)


def test_a_draft_runs_as_its_script_and_keeps_its_exact_code(make_script, operator, nats_url):
    """The IDE's unsaved text: no version is made, the run keeps the code it ran."""
    from oktoscripts.scripts.start import Origin, Source, start_run

    script = _setup(make_script, operator)
    draft = "-- not saved\nreturn 2\n"
    run = start_run(
        Source.draft(script, draft), user=operator, args={"x": 1}, origin=Origin("user")
    )
    stored = Run.objects.get(pk=run.pk)
    assert (stored.code, stored.script_version_id, stored.trigger) == (draft, None, "draft")
    assert stored.limits == expected_limits() and stored.script_name == script.name
    assert script.versions.count() == 1
    event = AuditEvent.objects.get(action="run.start", details__run=str(run.pk))
    assert event.details["draft"] is True and event.details["base_version"] == 1
    assert event.details["sha256"] == content_hash(draft)
