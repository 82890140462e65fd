"""The Lua thread pool gives up on a stuck call without losing capacity."""

from __future__ import annotations

import threading
import time

from oktoscripts.lua.threads import LuaThreadPool

from .conftest import assert_next_run_is_prompt


def test_abandoned_thread_is_replaced_and_capped():
    pool = LuaThreadPool(workers=1, max_stuck=1)
    release = threading.Event()
    stuck = [pool.submit(release.wait, 10) for _ in range(1)]
    time.sleep(0.05)
    pool.abandon(stuck[0])
    assert pool.stuck == 1
    # Capacity is back: a new job runs although the only thread is stuck.
    assert pool.submit(lambda: 42).result(timeout=2) == 42
    # Past the cap, no more replacements: the pool shrinks instead of growing.
    second = pool.submit(release.wait, 10)
    time.sleep(0.05)
    pool.abandon(second)
    assert pool.stuck == 2
    late = pool.submit(lambda: "after")
    time.sleep(0.1)
    assert not late.done()
    release.set()  # the stuck calls end: their threads leave or rejoin
    assert late.result(timeout=2) == "after"
    deadline = time.monotonic() + 2
    while pool.stuck and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.stuck == 0
    assert pool.submit(lambda: "still works").result(timeout=2) == "still works"
    pool.shutdown()


def test_abandoning_a_job_that_has_not_started_cancels_it():
    pool = LuaThreadPool(workers=1)
    release = threading.Event()
    busy = pool.submit(release.wait, 5)
    queued = pool.submit(lambda: "never")
    pool.abandon(queued)
    release.set()
    busy.result(timeout=2)
    assert queued.cancelled()
    assert pool.stuck == 0
    pool.shutdown()


async def test_a_run_whose_runtime_does_not_close_leaves_a_stuck_thread(run_lua, monkeypatch):
    # Closing a run's runtime happens on its Lua thread after the outcome is
    # out. A thread stuck there is stuck like one stuck in the run itself:
    # counted, and replaced, so the next run does not wait for it.
    from oktoscripts.lua.runtime import LuaSandbox

    release = threading.Event()
    close = LuaSandbox.close
    monkeypatch.setattr(LuaSandbox, "close", lambda self: (release.wait(10), close(self)))
    pool = LuaThreadPool(workers=1, max_stuck=1)
    try:
        outcome, _, _ = await run_lua("return 1", executor=pool)
        assert outcome.status == "succeeded"
        monkeypatch.setattr(LuaSandbox, "close", close)
        await assert_next_run_is_prompt(run_lua, pool)
        assert pool.stuck == 1
        release.set()
    finally:
        release.set()
        pool.shutdown(wait=False)
