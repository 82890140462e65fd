"""The worker's database side: claiming runs, batched output, outcomes, lost runs."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import sync_to_async

from oktoscripts.runs.models import Run, RunOutputLine
from oktoscripts.runs.store import RunStore

pytestmark = pytest.mark.django_db(transaction=True)


async def queued_run(**fields) -> Run:
    return await Run.objects.acreate(
        script_name="t.lua", code="return 1", started_by="api", **fields
    )


async def test_a_run_is_claimed_once():
    run = await queued_run()
    first, second = RunStore("w1"), RunStore("w2")
    try:
        claimed = await first.claim(str(run.id))
        assert claimed is not None and claimed.code == "return 1"
        assert await second.claim(str(run.id)) is None  # a second delivery is dropped
    finally:
        await first.close()
        await second.close()
    run = await Run.objects.aget(pk=run.pk)
    assert run.status == "running" and run.worker_id == "w1" and run.started is not None


async def test_a_cancelled_or_unknown_run_is_not_claimed():
    run = await queued_run(status="cancelled")
    store = RunStore("w1")
    try:
        assert await store.claim(str(run.id)) is None
        assert await store.claim("00000000-0000-0000-0000-000000000000") is None
    finally:
        await store.close()


async def test_output_and_outcome_are_stored_in_order():
    run = await queued_run()
    store = RunStore("w1")
    try:
        await store.claim(str(run.id))
        for seq in range(1, 2001):
            store.add_output(str(run.id), seq, "stdout", f"line {seq}", None, time.time())
        stored = await store.finish(
            str(run.id), "succeeded", {"answer": [1, 2]}, None, {"duration_s": 0.1}
        )
    finally:
        await store.close()
    assert stored
    run = await Run.objects.aget(pk=run.pk)
    assert (run.status, run.result, run.metrics) == (
        "succeeded",
        {"answer": [1, 2]},
        {"duration_s": 0.1},
    )
    texts = await sync_to_async(list)(
        RunOutputLine.objects.filter(run=run).order_by("seq").values_list("text", flat=True)
    )
    assert texts == [f"line {seq}" for seq in range(1, 2001)]


async def test_a_bad_write_does_not_undo_the_others():
    good, bad = await queued_run(), await queued_run()
    store = RunStore("w1")
    try:
        await store.claim(str(good.id))
        await store.claim(str(bad.id))
        store.add_output(str(good.id), 1, "stdout", "kept", None, time.time())
        with pytest.raises(TypeError):
            await store.finish(str(bad.id), "succeeded", {"not json": object()}, None, None)
        assert await store.finish(str(good.id), "succeeded", 7, None, None)
    finally:
        await store.close()
    assert (await Run.objects.aget(pk=good.pk)).result == 7
    assert await RunOutputLine.objects.filter(run=good).acount() == 1


async def test_finish_does_not_overwrite_a_lost_run():
    run = await queued_run()
    store = RunStore("w1")
    try:
        await store.claim(str(run.id))
        await Run.objects.filter(pk=run.pk).aupdate(status="lost")
        assert not await store.finish(str(run.id), "succeeded", 1, None, None)
    finally:
        await store.close()
    assert (await Run.objects.aget(pk=run.pk)).status == "lost"


async def test_a_listening_run_is_recorded_and_can_still_finish():
    run = await queued_run()
    store = RunStore("w1")
    try:
        await store.claim(str(run.id))
        store.set_status_soon(str(run.id), "listening")
        await store.flush()
        assert (await Run.objects.aget(pk=run.pk)).status == "listening"
        assert await store.finish(str(run.id), "cancelled", None, {"kind": "cancelled"}, None)
    finally:
        await store.close()
    assert (await Run.objects.aget(pk=run.pk)).status == "cancelled"
