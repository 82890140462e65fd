"""The run queue: submitting, cancelling queued runs, dropping requests, lost runs."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from oktoscripts.bus import blocking, subjects
from oktoscripts.bus.streams import ensure_workers_bucket
from oktoscripts.runs import live
from oktoscripts.runs.heartbeat import Heartbeat, LostRunSweeper
from oktoscripts.runs.models import Run
from oktoscripts.runs.store import RunStore
from oktoscripts.runs.submit import acancel_run, asubmit_run, cancel_run, submit_run

from .conftest import LOST_AFTER_S, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


async def test_submit_stores_a_queued_run(nc):
    run = await asubmit_run(
        "print('hi')", script_name="hello.lua", args={"serial": "X1"}, started_by="user", nc=nc
    )
    stored = await Run.objects.aget(pk=run.pk)
    assert (stored.status, stored.code, stored.args, stored.runtime, stored.started_by) == (
        "queued",
        "print('hi')",
        {"serial": "X1"},
        "luajit",  # the default runtime
        "user",
    )
    await acancel_run(run.id, nc=nc)  # leave nothing in the queue for other tests


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"runtime": "lua54"}, "unknown runtime"),
        ({"limits": {"instrucions": 5}}, "unknown limit"),
        ({"args": ["not", "a", "dict"]}, "args must be a dict"),
    ],
)
async def test_submit_refuses_bad_arguments(nc, bad, message):
    with pytest.raises(ValueError, match=message):
        await asubmit_run("return 1", nc=nc, **bad)
    assert await Run.objects.acount() == 0


async def test_a_queued_run_is_cancelled_directly_and_never_runs(nc, start_worker):
    events = await nc.subscribe(subjects.run_status("*"))
    run = await asubmit_run("return 1", nc=nc)
    assert await acancel_run(run.id, nc=nc) == "cancelled"
    cancelled = await Run.objects.aget(pk=run.pk)
    assert cancelled.status == "cancelled" and cancelled.finished is not None
    assert cancelled.error["message"] == "cancelled before it started"
    statuses = [live.decode((await events.next_msg(2)).data)["status"] for _ in range(2)]
    assert statuses == ["queued", "cancelled"]
    # A worker taking the request afterwards drops it.
    await start_worker()
    await asyncio.sleep(0.5)
    after = await Run.objects.aget(pk=run.pk)
    assert (after.status, after.started, after.worker_id) == ("cancelled", None, "")
    assert await acancel_run(run.id, nc=nc) == "cancelled"  # already final: unchanged


async def test_sync_submit_and_cancel_for_views(nats_url):
    def submit_and_cancel() -> tuple[str, str]:
        run = submit_run("return 1", script_name="sync.lua", started_by="api")
        return cancel_run(run.id), Run.objects.get(pk=run.pk).status

    try:
        assert await sync_to_async(submit_and_cancel)() == ("cancelled", "cancelled")
    finally:
        await sync_to_async(blocking.close)()


async def test_cancel_of_an_unknown_run_says_so(nc):
    with pytest.raises(Run.DoesNotExist):
        await acancel_run("00000000-0000-0000-0000-000000000000", nc=nc)


async def test_runs_of_a_dead_worker_become_lost(nc):
    """The sweeper judges by heartbeats: a run of a worker that never beats
    becomes lost, a run of a worker that keeps beating stays running."""
    kv = await ensure_workers_bucket(nc.jetstream(), ttl_s=60)
    alive = Heartbeat(kv, "alive-worker", 0.1, lambda: 1)
    beating = asyncio.create_task(alive.run())
    dead = await Run.objects.acreate(
        script_name="a", code="", started_by="api", status="running", worker_id="dead-worker"
    )
    held = await Run.objects.acreate(
        script_name="b", code="", started_by="api", status="listening", worker_id="alive-worker"
    )
    lost_events = []
    store = RunStore("sweeper")
    sweeper = LostRunSweeper(
        kv, store, "sweeper", 0.1, LOST_AFTER_S, lambda run_id, error: lost_events.append(run_id)
    )
    sweeping = asyncio.create_task(sweeper.run())
    try:
        lost = await wait_for_status(dead.pk, "lost", timeout=LOST_AFTER_S + 10)
    finally:
        sweeping.cancel()
        beating.cancel()
        await alive.remove()
        await store.close()
    assert "dead-worker" in lost.error["message"] and lost.finished is not None
    assert lost_events == [str(dead.pk)]
    assert (await Run.objects.aget(pk=held.pk)).status == "listening"


async def test_a_malformed_request_is_dropped_and_the_worker_goes_on(nc, start_worker):
    worker = await start_worker()
    await nc.jetstream().publish(subjects.run_queue(), b"not json")
    await nc.jetstream().publish(
        subjects.run_queue(), json.dumps({"run_id": "no-such-run"}).encode()
    )
    await asyncio.sleep(0.5)
    assert worker.load == 0
    info = await nc.jetstream().consumer_info(
        subjects.stream_name(subjects.RUN_QUEUE_STREAM), subjects.RUN_QUEUE_CONSUMER
    )
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_queued_run_whose_request_was_never_published_is_queued_again(nc, start_worker):
    from datetime import timedelta

    from django.utils import timezone

    from oktoscripts.bus.streams import ensure_run_queue
    from oktoscripts.runs.stranded import requeue_stranded

    # As a submitting process leaves it when it dies between storing and publishing.
    stranded = Run(script_name="stranded.lua", code="return 42", started_by="api")
    stranded.created = timezone.now() - timedelta(minutes=5)
    await sync_to_async(stranded.save)(force_insert=True)
    fresh = Run(script_name="being-submitted.lua", code="return 1", started_by="api")
    await sync_to_async(fresh.save)(force_insert=True)

    worker = await start_worker()
    stream = await ensure_run_queue(nc.jetstream())
    requeued = []
    for _ in range(100):  # until requests of earlier tests are drained
        requeued = await requeue_stranded(nc, worker.store, stream)
        if requeued:
            break
        await asyncio.sleep(0.05)
    assert requeued == [str(stranded.pk)]
    done = await wait_for_status(stranded.pk, "succeeded")
    assert done.result == 42
    assert (await Run.objects.aget(pk=fresh.pk)).status == "queued"  # within its grace
    await acancel_run(fresh.pk, nc=nc)
