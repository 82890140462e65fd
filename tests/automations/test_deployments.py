"""Deployed listeners: kept running, restarted on another worker when theirs dies."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from asgiref.sync import sync_to_async

from oktoscripts.automations import deployments
from oktoscripts.automations.models import Deployment
from oktoscripts.runs.models import Run, RunOutputLine

from .test_triggers import publish

pytestmark = pytest.mark.django_db(transaction=True)

LISTENER = """
listen_to_cwmp_event("2", nil, function(ev) print("periodic from " .. ev.serial_number) end, 2)
print("listening")
"""


async def deploy(make_script, operator, name: str, file: str, source: str) -> Deployment:
    """Save ``source`` as script ``file`` and deploy its latest version."""
    script = await sync_to_async(make_script)(file, source)
    return await sync_to_async(deployments.create)(
        name=name, script=script, version=None, args={}, user=operator
    )


async def wait_listening(dep_id: int, not_run: str | None = None, timeout: float = 40) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        dep = await Deployment.objects.aget(pk=dep_id)
        if dep.current_run_id and str(dep.current_run_id) != not_run:
            run = await Run.objects.filter(pk=dep.current_run_id).afirst()
            if run is not None and run.status == "listening":
                return run
        if time.monotonic() > deadline:
            ended = await Run.objects.filter(pk=dep.current_run_id).afirst()
            raise AssertionError(f"not listening: {dep.last_end}; {ended and ended.error}")
        await asyncio.sleep(0.1)


async def printed(run_id, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await RunOutputLine.objects.filter(run_id=run_id, text=text).aexists():
        assert time.monotonic() < deadline, f"{text!r} never printed"
        await asyncio.sleep(0.1)


async def test_listener_restarts_on_another_worker_when_its_worker_dies(
    nc, make_script, operator, worker_process, automation_service
):
    workers = [worker_process(), worker_process()]
    dep = await deploy(make_script, operator, "periodic watcher", "listener.lua", LISTENER)
    await automation_service()
    first = await wait_listening(dep.pk)
    await publish(nc, "CPE-1", "2 PERIODIC")
    await printed(first.pk, "periodic from CPE-1")

    doomed = next(w for w in workers if f"-{w.proc.pid}-" in first.worker_id)
    doomed.kill(signal.SIGKILL)
    second = await wait_listening(dep.pk, not_run=str(first.pk))
    assert second.worker_id != first.worker_id
    assert (await Run.objects.aget(pk=first.pk)).status == "lost"
    dep = await Deployment.objects.aget(pk=dep.pk)
    assert dep.restarts == 1 and "lost" in dep.last_end
    assert second.script_version_id == first.script_version_id  # same pinned version
    await publish(nc, "CPE-2", "2 PERIODIC")
    await printed(second.pk, "periodic from CPE-2")
    deadline = time.monotonic() + 10
    while (await Deployment.objects.aget(pk=dep.pk)).events < 2:
        assert time.monotonic() < deadline, "event count not updated"
        await asyncio.sleep(0.1)
    dep = await Deployment.objects.aget(pk=dep.pk)
    assert dep.last_events[-1]["event"]["serial_number"] == "CPE-2"


BOTH_LISTENERS = """
listen_to_cwmp_event("2", nil, function(ev) print("periodic from " .. ev.serial_number) end, 4)
listen_to_new_device(function(device) print("new device " .. device.sn) end)
"""


async def publish_new_device(nc, serial: str) -> None:
    from oktoscripts.devices import events as device_events

    js = nc.jetstream()
    await device_events.ensure_stream(js)
    await device_events.publish(js, {"sn": serial}, "cwmp", f"{serial}@test")


async def output_of(run_id) -> list[str]:
    lines = RunOutputLine.objects.filter(run_id=run_id, stream="stdout")
    return [text async for text in lines.values_list("text", flat=True)]


async def test_events_while_the_listener_restarts_are_neither_lost_nor_doubled(
    nc, make_script, operator, worker_process, automation_service
):
    workers = [worker_process(), worker_process()]
    dep = await deploy(make_script, operator, "both", "both.lua", BOTH_LISTENERS)
    await automation_service()
    first = await wait_listening(dep.pk)
    for n in range(5):
        await publish(nc, f"BEFORE-{n}", "2 PERIODIC")
    await publish_new_device(nc, "NEW-BEFORE")
    await printed(first.pk, "new device NEW-BEFORE")
    for n in range(5):
        await printed(first.pk, f"periodic from BEFORE-{n}")

    next(w for w in workers if f"-{w.proc.pid}-" in first.worker_id).kill(signal.SIGKILL)
    # While no run listens: these wait in the deployment's consumers.
    for n in range(20):
        await publish(nc, f"DURING-{n}", "2 PERIODIC")
    await publish_new_device(nc, "NEW-DURING")

    second = await wait_listening(dep.pk, not_run=str(first.pk))
    await publish(nc, "AFTER", "2 PERIODIC")
    await printed(second.pk, "periodic from AFTER")
    await printed(second.pk, "new device NEW-DURING")
    for n in range(20):
        await printed(second.pk, f"periodic from DURING-{n}")
    await asyncio.sleep(0.5)  # a doubled event would be printed by now
    seen = await output_of(first.pk) + await output_of(second.pk)
    expected = [f"periodic from BEFORE-{n}" for n in range(5)] + [
        f"periodic from DURING-{n}" for n in range(20)
    ]
    expected += ["periodic from AFTER", "new device NEW-BEFORE", "new device NEW-DURING"]
    assert sorted(seen) == sorted(expected)


async def test_stop_and_start_a_deployment(
    nc, make_script, operator, start_worker, automation_service
):
    from oktoscripts.runs.submit import acancel_run

    await start_worker()
    dep = await deploy(make_script, operator, "w", "listener.lua", LISTENER)
    await automation_service()
    run = await wait_listening(dep.pk)
    to_cancel = await sync_to_async(deployments.set_desired)(dep, "stopped")
    assert to_cancel == str(run.pk)
    await acancel_run(to_cancel, nc=nc)
    deadline = time.monotonic() + 10
    while (await Run.objects.aget(pk=run.pk)).status != "cancelled":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await publish(nc, "WHILE-STOPPED", "2 PERIODIC")
    await asyncio.sleep(1)  # the supervisor does not bring a stopped deployment back
    dep = await Deployment.objects.aget(pk=dep.pk)
    assert str(dep.current_run_id) == str(run.pk)
    assert deployments.state(dep, "cancelled") == "stopped"
    await sync_to_async(deployments.set_desired)(dep, "running")
    again = await wait_listening(dep.pk, not_run=str(run.pk))
    # Started afresh: what came while it was stopped is not replayed.
    await publish(nc, "AFTER-START", "2 PERIODIC")
    await printed(again.pk, "periodic from AFTER-START")
    assert await output_of(again.pk) == ["listening", "periodic from AFTER-START"]


async def test_two_schedulers_start_a_deployment_once(
    nc, make_script, operator, start_worker, automation_service
):
    await start_worker()
    dep = await deploy(make_script, operator, "once", "listener.lua", LISTENER)
    await automation_service("one")
    await automation_service("two")
    await wait_listening(dep.pk)
    await asyncio.sleep(1.5)  # both supervisors looked several times
    started = Run.objects.filter(trigger__startswith=f"deployment once #{dep.pk}")
    assert await started.acount() == 1
