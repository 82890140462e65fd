"""Event triggers: CWMP events and new devices start runs, each event exactly once."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from oktoscripts.automations.models import Trigger
from oktoscripts.automations.triggers import source_of
from oktoscripts.cwmp import events as cwmp_events
from oktoscripts.cwmp.soap import EventStruct
from oktoscripts.runs.models import Run

from .test_bulk import register

pytestmark = pytest.mark.django_db(transaction=True)

ECHO = "local a = ... ; return {serial = a.serial, event = a.event, device = a.device}"


async def make_trigger(make_script, **fields) -> Trigger:
    script = await sync_to_async(make_script)("on-event.lua", ECHO)
    return await Trigger.objects.acreate(name="t", script=script, **fields)


async def event_runs(expected: int, timeout: float = 30) -> list[Run]:
    deadline = time.monotonic() + timeout
    while True:
        runs = [r async for r in Run.objects.filter(started_by="event")]
        done = [r for r in runs if r.status in Run.FINAL]
        if len(done) >= expected:
            await asyncio.sleep(0.5)  # nothing more may come
            return [r async for r in Run.objects.filter(started_by="event")]
        assert time.monotonic() < deadline, f"{len(done)} of {expected} event runs finished"
        await asyncio.sleep(0.05)


async def publish(nc, serial: str, *codes: str) -> None:
    js = nc.jetstream()
    await cwmp_events.ensure_stream(js)
    await cwmp_events.publish(js, serial, [EventStruct(code) for code in codes])


async def test_cwmp_event_trigger_runs_for_matching_event_and_device_only(
    nc, registry, make_script, start_worker, automation_service
):
    await sync_to_async(register)(registry)
    trigger = await make_trigger(
        make_script,
        kind="cwmp_event",
        event="1",
        device_filter={"vendor": "Acme"},
        args={"why": "boot"},
    )
    await start_worker()
    await automation_service()
    await asyncio.sleep(0.5)  # the consumer exists (it would start at active_since anyway)
    await publish(nc, "ACME-001", "1 BOOT", "4 VALUE CHANGE")
    await publish(nc, "OTHER-1", "1 BOOT")  # filtered out by vendor
    await publish(nc, "ACME-002", "2 PERIODIC")  # filtered out by event code
    await publish(nc, "ACME-003", "1 BOOT")
    runs = await event_runs(2)
    assert sorted(r.args["serial"] for r in runs) == ["ACME-001", "ACME-003"]
    run = next(r for r in runs if r.args["serial"] == "ACME-001")
    assert run.status == "succeeded", run.error
    assert run.result["event"]["event"] == "1" and run.result["event"]["event_name"] == "BOOT"
    assert run.args["why"] == "boot"
    assert run.trigger.startswith(f"trigger t #{trigger.pk}: event 1 BOOT of ACME-001")
    trigger = await Trigger.objects.aget(pk=trigger.pk)
    assert trigger.fired == 2 and trigger.last_fired is not None


async def test_events_are_run_once_with_two_schedulers_and_after_a_redelivery(
    nc, make_script, start_worker, automation_service
):
    trigger = await make_trigger(make_script, kind="cwmp_event", event="")
    await start_worker()
    first = await automation_service("one")
    await automation_service("two")
    await asyncio.sleep(0.5)
    for n in range(60):
        await publish(nc, f"CPE-{n:02d}", "2 PERIODIC")
    runs = await event_runs(60)
    assert len(runs) == 60
    assert sorted(r.args["serial"] for r in runs) == [f"CPE-{n:02d}" for n in range(60)]

    # Lose every acknowledgement: the consumer is deleted and made again at the same
    # start time, so JetStream delivers all 60 events once more. No run starts twice.
    await first.stop()
    source = source_of(trigger)
    await nc.jetstream().delete_consumer(source.stream, source.consumer)
    await automation_service("three")
    await publish(nc, "CPE-LAST", "2 PERIODIC")
    runs = await event_runs(61)
    assert len(runs) == 61


async def test_new_device_trigger_gets_the_device_table(
    nc, mongo_uri, make_script, start_worker, automation_service
):
    from django.conf import settings

    from oktoscripts.devices.client import mongo_database
    from oktoscripts.devices.events import BlockingAnnouncer
    from oktoscripts.devices.registry import DeviceRegistry

    await make_trigger(make_script, kind="new_device", device_filter={"vendor": "Acme"})
    await start_worker()
    await automation_service()
    await asyncio.sleep(0.5)
    assert settings.NATS_URL
    announcing = DeviceRegistry(
        await sync_to_async(mongo_database)(), announcer=BlockingAnnouncer()
    )
    await asyncio.to_thread(announcing.collection.delete_many, {})
    await asyncio.to_thread(register, announcing, 2)  # 2 Acme devices, 3 others
    await asyncio.to_thread(register, announcing, 2)  # seen again: not new
    runs = await event_runs(2)
    assert sorted(r.result["device"]["sn"] for r in runs) == ["ACME-001", "ACME-002"]
    assert runs[0].result["device"]["vendor"] == "Acme"
