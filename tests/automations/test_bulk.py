"""Bulk runs over real devices of the registry, run by a real worker process."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from oktoscripts.automations import bulk
from oktoscripts.automations.models import BulkRun, BulkRunItem
from oktoscripts.runs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = """
local serial = (...).serial
local device = get_device(serial)
if serial == "ACME-007" then error("this one breaks") end
sleep((...).pause or 0)
return {sn = device.sn, vendor = device.vendor, tag = (...).tag}
"""


def register(registry, count: int = 12) -> None:
    for n in range(1, count + 1):
        registry.upsert_cwmp(
            f"ACME-{n:03d}",
            oui="00AABB",
            product_class="Router",
            manufacturer="Acme",
            software_version="1.0",
        )
    for n in range(1, 4):
        registry.upsert_cwmp(
            f"OTHER-{n}",
            oui="00CCDD",
            product_class="ONT",
            manufacturer="Other",
            software_version="2.0",
        )


async def wait_bulk(bulk_id: int, statuses: tuple[str, ...], timeout: float = 60) -> BulkRun:
    deadline = time.monotonic() + timeout
    while True:
        record = await BulkRun.objects.aget(pk=bulk_id)
        if record.status in statuses:
            return record
        assert time.monotonic() < deadline, f"bulk run stayed {record.status}"
        await asyncio.sleep(0.1)


async def items_of(bulk_id: int) -> dict[str, BulkRunItem]:
    return {i.serial: i async for i in BulkRunItem.objects.filter(bulk_id=bulk_id)}


async def test_bulk_run_covers_each_matching_device_within_the_concurrency_limit(
    registry, make_script, operator, platform_worker, automation_service
):
    await sync_to_async(register)(registry)
    script = await sync_to_async(make_script)("per-device.lua", SCRIPT)
    platform_worker()
    record = await sync_to_async(bulk.create)(
        script=script,
        version=None,
        args={"tag": "t1", "pause": 0.3},
        device_filter={"vendor": "Acme"},
        concurrency=3,
        user=operator,
        registry=registry,
    )
    await automation_service()
    peak = 0
    deadline = time.monotonic() + 60
    while (await BulkRun.objects.aget(pk=record.pk)).status != "finished":
        running = await BulkRunItem.objects.filter(bulk=record, status="running").acount()
        peak = max(peak, running)
        assert time.monotonic() < deadline, "bulk run did not finish"
        await asyncio.sleep(0.05)
    assert 1 <= peak <= 3
    items = await items_of(record.pk)
    assert sorted(items) == [f"ACME-{n:03d}" for n in range(1, 13)]  # OTHER-* do not match
    assert items["ACME-001"].status == "succeeded"
    assert items["ACME-001"].result == {"sn": "ACME-001", "vendor": "Acme", "tag": "t1"}
    assert items["ACME-007"].status == "failed" and "this one breaks" in items["ACME-007"].error
    assert sum(i.status == "succeeded" for i in items.values()) == 11
    progress = await sync_to_async(bulk.progress)(record)
    assert progress["done"] == progress["total"] == 12 and progress["by_status"]["failed"] == 1
    runs = [r async for r in Run.objects.filter(trigger__startswith=f"bulk run #{record.pk} ")]
    assert len(runs) == 12 and {r.args["serial"] for r in runs} == set(items)

    # Retry the failed one: only it runs again (and fails again: the script is the same).
    assert await sync_to_async(bulk.retry_failed)(record) == 1
    await wait_bulk(record.pk, ("finished",))
    items = await items_of(record.pk)
    assert items["ACME-007"].attempts == 2 and items["ACME-007"].status == "failed"
    assert items["ACME-001"].attempts == 1
    assert await Run.objects.filter(trigger__startswith=f"bulk run #{record.pk} ").acount() == 13


async def test_stop_cancels_running_items_and_retry_runs_the_rest(
    registry, make_script, operator, platform_worker, automation_service
):
    await sync_to_async(register)(registry)
    script = await sync_to_async(make_script)("slow.lua", SCRIPT)
    platform_worker()
    record = await sync_to_async(bulk.create)(
        script=script,
        version=None,
        args={"pause": 60},
        device_filter={"vendor": "Acme"},
        concurrency=2,
        user=operator,
        registry=registry,
    )
    await automation_service()
    deadline = time.monotonic() + 30
    while await Run.objects.filter(status="running", trigger__startswith="bulk run").acount() < 2:
        assert time.monotonic() < deadline, "items did not start"
        await asyncio.sleep(0.05)
    assert await sync_to_async(bulk.request_stop)(record)
    stopped = await wait_bulk(record.pk, ("stopped",), timeout=30)
    assert stopped.finished is not None
    items = await items_of(record.pk)
    statuses = sorted(i.status for i in items.values())
    assert statuses == ["cancelled"] * 2 + ["stopped"] * 10
    assert not await Run.objects.filter(status__in=Run.ACTIVE).aexists()

    # Retry takes every item that did not succeed; this time let them finish quickly.
    await BulkRun.objects.filter(pk=record.pk).aupdate(args={"pause": 0})
    assert await sync_to_async(bulk.retry_failed)(record) == 12
    await wait_bulk(record.pk, ("finished",))
    items = await items_of(record.pk)
    assert sum(i.status == "succeeded" for i in items.values()) == 11
    assert items["ACME-007"].status == "failed"


async def test_two_schedulers_drive_a_bulk_run_without_overshooting(
    registry, make_script, operator, start_worker, automation_service
):
    await sync_to_async(register)(registry)
    script = await sync_to_async(make_script)("per-device.lua", SCRIPT)
    await start_worker()
    record = await sync_to_async(bulk.create)(
        script=script,
        version=None,
        args={"pause": 0.2},
        device_filter={"vendor": "Acme"},
        concurrency=2,
        user=operator,
        registry=registry,
    )
    await automation_service("one")
    await automation_service("two")
    peak = 0
    deadline = time.monotonic() + 60
    while (await BulkRun.objects.aget(pk=record.pk)).status != "finished":
        peak = max(peak, await BulkRunItem.objects.filter(bulk=record, status="running").acount())
        assert time.monotonic() < deadline, "bulk run did not finish"
        await asyncio.sleep(0.05)
    assert peak <= 2
    runs = [r async for r in Run.objects.filter(trigger__startswith=f"bulk run #{record.pk} ")]
    assert sorted(r.args["serial"] for r in runs) == [f"ACME-{n:03d}" for n in range(1, 13)]


CHANGE_THEN_WAIT = """
local r = send_cwmp_message(args.serial, "<cwmp:SetParameterValues><ParameterList>"
  .. "<ParameterValueStruct><Name>" .. args.root .. "ManagementServer.PeriodicInformInterval"
  .. "</Name><Value xsi:type=\\"xsd:unsignedInt\\">3600</Value></ParameterValueStruct>"
  .. "</ParameterList><ParameterKey>bulk-lost</ParameterKey></cwmp:SetParameterValues>", 1)
if r ~= true then error(json_encode(r)) end
print("changed")
sleep(args.pause)
return "done"
"""


async def test_an_item_lost_with_its_worker_runs_again_and_changes_its_device_once(
    make_script, operator, platform_worker, automation_service, nats_url, mongo_uri
):
    """The worker holding an item's run dies after the run changed its device:
    the item is run again on another worker with the same replay key, whose
    device call gets the answer of the first one instead of reaching the CPE
    again. The item succeeds; the CPE applied the change once."""
    from django.conf import settings

    from oktoscripts.cwmp.app import start_acs
    from oktoscripts.cwmp.config import AcsConfig
    from oktoscripts.devices.client import default_registry
    from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions

    acs = await start_acs(
        AcsConfig(host="127.0.0.1", port=0, auth="off"),
        nats_url=nats_url,
        mongo_uri=mongo_uri,
        db_name=settings.MONGO_DB_NAME,
    )
    fleet = CpeFleet(
        1, CpeOptions(acs_url=f"http://127.0.0.1:{acs.port}/", auth="none"), prefix="LOSTBULK"
    )
    try:
        await fleet.start()
        cpe = fleet.cpes[0]
        deadline = time.monotonic() + 30
        while not cpe.last_session_ok:  # registered, answering Connection Requests
            assert time.monotonic() < deadline, "the CPE never got its first session"
            await asyncio.sleep(0.05)
        script = await sync_to_async(make_script)("change-then-wait.lua", CHANGE_THEN_WAIT)
        doomed = platform_worker()
        record = await sync_to_async(bulk.create)(
            script=script,
            version=None,
            args={"pause": 3, "root": cpe.dm.root},
            device_filter={"text": "LOSTBULK"},
            concurrency=1,
            user=operator,
            registry=await sync_to_async(default_registry)(),
        )
        await automation_service()
        deadline = time.monotonic() + 30
        while cpe.applied["bulk-lost"] == 0:
            assert time.monotonic() < deadline, "the first attempt never changed the device"
            await asyncio.sleep(0.05)
        doomed.kill()  # SIGKILL while the run sleeps after its change
        platform_worker()
        await wait_bulk(record.pk, ("finished",))
    finally:
        await fleet.stop()
        await acs.stop()
    item = (await items_of(record.pk))[cpe.serial]
    assert (item.status, item.result, item.attempts) == ("succeeded", "done", 2)
    assert cpe.applied["bulk-lost"] == 1
    runs = [
        r
        async for r in Run.objects.filter(trigger__startswith=f"bulk run #{record.pk} ").order_by(
            "created"
        )
    ]
    assert [r.status for r in runs] == ["lost", "succeeded"]
    assert runs[0].replay_key == runs[1].replay_key == str(runs[0].pk)
