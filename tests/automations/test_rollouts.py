"""Staged rollouts: canary and waves run in order, a wave over the failure
threshold stops the bulk run, pauses hold, and above the Admin's device count
a second person approves before anything starts (real worker, real devices)."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from oktoscripts.automations import bulk, rollout
from oktoscripts.automations.models import BulkRun, BulkRunItem, RolloutPolicy
from oktoscripts.runs.models import Run

from .test_api import call, clients  # noqa: F401 - the fixture
from .test_bulk import SCRIPT, items_of, register, wait_bulk

pytestmark = pytest.mark.django_db(transaction=True)


def test_waves_are_the_canary_then_counts_or_percentages():
    assert rollout.wave_numbers(10, 2, 3, 0) == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    assert rollout.wave_numbers(8, 0, 0, 25) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert rollout.wave_numbers(4, 1, 0, 0) == [0, 1, 1, 1]
    assert rollout.wave_numbers(3, 5, 1, 0) == [0, 0, 0]
    with pytest.raises(rollout.RolloutError):
        rollout.wave_numbers(3, 0, 1, 50)


async def _create(registry, make_script, operator, **staged):
    await sync_to_async(register)(registry)
    script = await sync_to_async(make_script)("waves.lua", SCRIPT)
    return await sync_to_async(bulk.create)(
        script=script,
        version=None,
        args={"pause": 0.05},
        device_filter={"vendor": "Acme"},
        concurrency=4,
        user=operator,
        registry=registry,
        **staged,
    )


async def test_a_wave_over_the_failure_threshold_stops_the_rollout(
    registry, make_script, operator, platform_worker, automation_service
):
    # 12 devices: canary ACME-001..002, waves of 4; ACME-007 fails (wave 2: 25%).
    record = await _create(
        registry, make_script, operator, canary=2, wave_size=4, failure_threshold=20
    )
    assert record.waves == 4
    platform_worker()
    await automation_service()
    stopped = await wait_bulk(record.pk, ("stopped", "finished"), timeout=90)
    assert stopped.status == "stopped"
    assert "wave 2" in stopped.stop_reason and "1 of 4" in stopped.stop_reason
    items = await items_of(record.pk)
    assert {items[f"ACME-{n:03d}"].status for n in (1, 2, 3, 4, 5, 6)} == {"succeeded"}
    assert items["ACME-007"].status == "failed"
    # The last wave never started: stopped, with no run.
    for serial in ("ACME-011", "ACME-012"):
        assert items[serial].status == "stopped" and items[serial].run_id is None
    # Waves ran in order: no run of a wave began before the previous wave ended.
    runs = {str(r.id): r async for r in Run.objects.filter(trigger__startswith="bulk run")}
    by_wave: dict[int, list] = {}
    for item in items.values():
        if item.run_id:
            by_wave.setdefault(item.wave, []).append(runs[str(item.run_id)])
    for wave in (1, 2):
        assert max(r.finished for r in by_wave[wave - 1]) <= min(r.created for r in by_wave[wave])


async def test_the_pause_between_waves_holds_and_pause_resume_work(
    registry, make_script, operator, platform_worker, automation_service
):
    record = await _create(
        registry, make_script, operator, canary=1, wave_percent=50, wave_pause_s=2
    )
    platform_worker()
    await automation_service()
    deadline = time.monotonic() + 60
    while not await BulkRunItem.objects.filter(bulk=record, wave=0, status="succeeded").aexists():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    canary_done = time.monotonic()
    await sync_to_async(rollout.pause)(await BulkRun.objects.aget(pk=record.pk))
    await asyncio.sleep(3)  # past the pause: still nothing of wave 1 while paused
    assert (
        not await BulkRunItem.objects.filter(bulk=record, wave=1)
        .exclude(status="pending")
        .aexists()
    )
    await sync_to_async(rollout.resume)(await BulkRun.objects.aget(pk=record.pk))
    finished = await wait_bulk(record.pk, ("finished",), timeout=90)
    assert finished.stop_reason == "" and time.monotonic() - canary_done >= 2


async def test_above_the_admins_count_a_second_person_approves(
    registry, make_script, operator, platform_worker, automation_service
):
    from django.contrib.auth.models import Group, User

    await RolloutPolicy.objects.aupdate_or_create(pk=1, defaults={"approval_above": 5})
    record = await _create(registry, make_script, operator)
    assert record.status == "approval"
    platform_worker()
    await automation_service()
    await asyncio.sleep(1.5)
    assert not await Run.objects.filter(trigger__startswith="bulk run").aexists()
    with pytest.raises(rollout.RolloutError, match="cannot be the person"):
        await sync_to_async(rollout.approve)(record, operator)
    other = await User.objects.acreate(username="operator2")
    await sync_to_async(other.groups.add)(await Group.objects.aget(name="Operator"))
    await sync_to_async(rollout.approve)(record, other)
    finished = await wait_bulk(record.pk, ("finished",), timeout=90)
    assert finished.approved_by_id == other.pk


def test_approval_pause_and_policy_through_the_api(clients, registry):  # noqa: F811
    from oktoscripts.scripts.models import AuditEvent

    register(registry, 6)
    status, policy = call(
        clients["operator"], "PUT", "/api/bulk-runs/policy", {"approval_above": 3}
    )
    assert status == 403
    status, policy = call(clients["admin"], "PUT", "/api/bulk-runs/policy", {"approval_above": 3})
    assert status == 200 and policy["approval_above"] == 3
    status, data = call(
        clients["operator"],
        "POST",
        "/api/bulk-runs",
        {
            "script_id": clients["script"].pk,
            "device_filter": {"vendor": "Acme"},
            "canary": 1,
            "wave_size": 2,
            "failure_threshold": 50,
        },
    )
    assert status == 201 and data["status"] == "approval", data
    assert [w["total"] for w in data["waves"]] == [1, 2, 2, 1] and data["waves"][0]["canary"]
    url = f"/api/bulk-runs/{data['id']}"
    status, err = call(clients["operator"], "POST", url + "/approve")
    assert status == 403 and "cannot be the person" in err["error"]
    assert call(clients["author"], "POST", url + "/approve")[0] == 403
    status, approved = call(clients["admin"], "POST", url + "/approve")
    assert status == 200 and approved["status"] == "running"
    assert approved["approved_by"] == "admin"
    status, paused = call(clients["operator"], "POST", url + "/pause")
    assert status == 200 and paused["status"] == "paused"
    assert call(clients["operator"], "POST", url + "/pause")[0] == 409
    status, resumed = call(clients["operator"], "POST", url + "/resume")
    assert status == 200 and resumed["status"] == "running"
    status, stopped = call(clients["operator"], "POST", url + "/stop")
    assert stopped["stop_reason"] == "stopped by operator"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "bulk.policy",
        "bulk.request",
        "bulk.approve",
        "bulk.pause",
        "bulk.resume",
        "bulk.stop",
    } <= actions
    page = clients["viewer"].get(f"/automations/bulk/{data['id']}/").content.decode()
    assert "canary of 1" in page and "stops above 50" in page
    index = clients["viewer"].get("/automations/").content.decode()
    assert "over 3 devices, a second person approves" in index
    assert 'id="rollout-policy"' not in index
    assert 'id="rollout-policy"' in clients["admin"].get("/automations/").content.decode()
