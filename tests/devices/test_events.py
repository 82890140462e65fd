"""The new-device event: one per insert, whoever inserts, none lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time

import nats
import pytest

from oktoscripts.devices.events import LoopAnnouncer, new_device_events
from oktoscripts.devices.registry import DeviceRegistry

# A protocol process: registers the given serials at a given moment, with its
# own MongoDB client and its own NATS connection, and says what it inserted.
PROTOCOL_PROCESS = textwrap.dedent(
    """
    import json, sys, time
    import django
    django.setup()
    import pymongo
    from oktoscripts.devices.events import BlockingAnnouncer
    from oktoscripts.devices.registry import DeviceRegistry

    uri, db_name, start, serials = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
    mdb = pymongo.MongoClient(uri, tz_aware=True)[db_name]
    registry = DeviceRegistry(mdb, announcer=BlockingAnnouncer())
    registry.ensure_indexes()
    while time.time() < start:
        time.sleep(0.001)
    inserted = [s for s in serials if registry.upsert_cwmp(s, manufacturer="Race").inserted]
    registry.flush_announced()
    print(json.dumps(inserted))
    """
)


async def collect(events, expected: int, timeout: float = 20.0, settle: float = 0.5) -> list[dict]:
    """The events received until ``expected`` arrived (or ``timeout``), plus
    any that arrive in the next ``settle`` seconds (there should be none)."""
    got: list[dict] = []
    enough = asyncio.Event()

    async def pull() -> None:
        async for device in events:
            got.append(device)
            if len(got) >= expected:
                enough.set()

    task = asyncio.create_task(pull())
    try:
        await asyncio.wait_for(enough.wait(), timeout)
        await asyncio.sleep(settle)
    except TimeoutError:
        pass
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return got


@pytest.fixture
async def nc(nats_url):
    client = await nats.connect(nats_url)
    yield client
    await client.close()


async def test_two_processes_racing_on_new_devices_give_one_event_each(
    nc, nats_url, mongo_uri, mdb
):
    events = await new_device_events(nc)
    serials = [f"RACE-{i:03d}" for i in range(30)]
    start = time.time() + 3.0  # both processes are up and connected by then
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "oktoscripts.settings", "NATS_URL": nats_url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROTOCOL_PROCESS, mongo_uri, mdb.name, str(start), *serials],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [await asyncio.to_thread(p.communicate, timeout=90) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    inserted = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    # Exactly one process inserted each device.
    assert sorted(inserted[0] + inserted[1]) == serials

    got = await collect(events, len(serials))
    assert sorted(d["sn"] for d in got) == serials  # one each, no repeat
    assert all(d["vendor"] == "Race" and d["cwmp"] is True for d in got)
    assert mdb.devices.count_documents({"announce_pending": True}) == 0
    await events.aclose()


async def test_delete_then_register_again_is_announced_again(nc, mdb):
    loop = asyncio.get_running_loop()
    registry = DeviceRegistry(mdb, announcer=LoopAnnouncer(nc, loop))
    registry.ensure_indexes()
    events = await new_device_events(nc)
    await asyncio.to_thread(registry.upsert_cwmp, "AGAIN", ip="10.1.1.1")
    await asyncio.to_thread(registry.upsert_cwmp, "AGAIN", ip="10.1.1.2")  # known: no event
    await asyncio.to_thread(registry.delete, "AGAIN")
    await asyncio.to_thread(registry.upsert_usp, "AGAIN", mtp="mqtt")
    got = await collect(events, 2)
    assert [(d["sn"], d["cwmp"], d["usp"]) for d in got] == [
        ("AGAIN", True, False),
        ("AGAIN", False, True),
    ]
    assert got[0]["ip"] == "10.1.1.1"
    await events.aclose()


async def test_event_left_pending_by_a_crash_is_published_later(nc, mdb):
    # A process inserts the device and dies before publishing (no announcer).
    crashed = DeviceRegistry(mdb)
    crashed.ensure_indexes()
    await asyncio.to_thread(crashed.upsert_usp, "os::orphan", vendor="Acme")
    assert mdb.devices.find_one({"serial": "os::orphan"})["announce_pending"] is True

    events = await new_device_events(nc)
    survivor = DeviceRegistry(mdb, announcer=LoopAnnouncer(nc, asyncio.get_running_loop()))
    assert await asyncio.to_thread(survivor.announce_pending, 0) == 1
    got = await collect(events, 1)
    assert [d["sn"] for d in got] == ["os::orphan"]
    for _ in range(400):  # the flag is cleared once JetStream acknowledged the event
        if "announce_pending" not in mdb.devices.find_one({"serial": "os::orphan"}):
            break
        await asyncio.sleep(0.05)
    assert "announce_pending" not in mdb.devices.find_one({"serial": "os::orphan"})
    assert await asyncio.to_thread(survivor.announce_pending, 0) == 0
    await events.aclose()


async def test_listener_sees_only_devices_inserted_after_it_subscribed(nc, mdb):
    registry = DeviceRegistry(mdb, announcer=LoopAnnouncer(nc, asyncio.get_running_loop()))
    registry.ensure_indexes()
    await asyncio.to_thread(registry.upsert_cwmp, "BEFORE")
    await asyncio.sleep(0.3)
    events = await new_device_events(nc)
    await asyncio.to_thread(registry.upsert_cwmp, "AFTER")
    got = await collect(events, 1)
    assert [d["sn"] for d in got] == ["AFTER"]
    await events.aclose()


async def test_two_clients_racing_bulk_upserts_insert_each_device_once(nc, mongo_uri, mdb):
    import threading

    import pymongo

    events = await new_device_events(nc)
    loop = asyncio.get_running_loop()
    serials = [f"BULK-{i:03d}" for i in range(60)]
    barrier = threading.Barrier(2)
    inserted: list[list[str]] = [[], []]

    def protocol_process(k: int) -> None:
        client = pymongo.MongoClient(mongo_uri, tz_aware=True)
        try:
            registry = DeviceRegistry(client[mdb.name], announcer=LoopAnnouncer(nc, loop))
            registry.ensure_indexes()
            order = serials
            barrier.wait()
            for first in range(0, len(order), 10):
                batch = [
                    registry.cwmp_update(s, manufacturer="Bulk") for s in order[first : first + 10]
                ]
                results = registry.bulk_upsert(batch)
                inserted[k].extend(r.serial for r in results if r.inserted)
        finally:
            client.close()

    threads = [threading.Thread(target=protocol_process, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(lambda: [thread.join() for thread in threads])
    assert sorted(inserted[0] + inserted[1]) == serials
    got = await collect(events, len(serials))
    assert sorted(d["sn"] for d in got) == serials
    await events.aclose()
