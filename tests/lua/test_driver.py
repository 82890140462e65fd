"""The coroutine driver: waiting bindings, pcall/xpcall and coroutines around
them, cancellation, listeners, and runs going on side by side."""

from __future__ import annotations

import asyncio
import time

import pytest

from oktoscripts.lua.limits import Limits


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_waiting_binding_inside_pcall_and_xpcall(run_lua, runtime, test_bindings):
    source = """
    local ok, a, b = pcall(test_echo, "one")
    local ok2, err = pcall(function() sleep(0.01) error("after the wait") end)
    local ok3, handled = xpcall(function()
      test_echo("x", 0.01)
      error({code = 7})
    end, function(e) return e.code * 6 end)
    local ok4, tb = xpcall(function()
      sleep(0)
      local t = nil
      return t.field
    end, debug.traceback)
    return {ok, a, b, ok2, err, ok3, handled, ok4, tb}
    """
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    r = outcome.result
    assert r[:4] == [True, "one", "second", False]
    assert r[4] == "script:3: after the wait"
    assert r[5:7] == [False, 42]
    assert r[7] is False
    assert r[8].startswith("script:11: attempt to index local 't' (a nil value)\nstack traceback:")
    assert "script:11: in function <script:8>" in r[8]
    assert "(engine)" not in r[8] and "[C]" not in r[8]


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_waiting_binding_inside_user_coroutines(run_lua, test_bindings, runtime):
    source = """
    local gen = coroutine.wrap(function()
      for i = 1, 3 do
        local v = test_echo(i * 10)
        coroutine.yield(v)
      end
      return "end"
    end)
    local got = {gen(), gen(), gen(), gen()}
    local co = coroutine.create(function(a)
      local b = coroutine.yield(test_echo(a))
      sleep(0.01)
      local ok, v = pcall(test_echo, b)
      return ok, v, coroutine.status(coroutine.running())
    end)
    local r1 = {coroutine.resume(co, "A")}
    local r2 = {coroutine.resume(co, "B")}
    return {got, r1, r2, coroutine.status(co), coroutine.running()}
    """
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    got, r1, r2, status = outcome.result[:4]
    assert got == [10, 20, 30, "end"]
    assert r1 == [True, "A", "second"]
    assert r2 == [True, True, "B", "running"]
    assert status == "dead"
    assert len(outcome.result) == 4  # coroutine.running() is nil in the main chunk


async def test_yield_outside_a_coroutine_is_an_error(run_lua):
    outcome, _, _ = await run_lua("local ok, e = pcall(coroutine.yield, 1)\nreturn ok, e")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [False, "attempt to yield from outside a coroutine"]


async def test_user_yield_inside_pcall_inside_a_coroutine(run_lua):
    source = """
    local co = coroutine.wrap(function()
      local ok, v = pcall(function() return coroutine.yield("from inside pcall") + 1 end)
      return ok, v
    end)
    local first = co()
    return first, co(41)
    """
    outcome, _, _ = await run_lua(source)
    assert outcome.result == ["from inside pcall", True, 42]


async def test_binding_failure_is_a_lua_error_at_the_call(run_lua, test_bindings):
    outcome, _, _ = await run_lua("local x = 1\ntest_fail()\n")
    assert outcome.status == "failed"
    assert outcome.error.message == "script:2: test_fail: device exploded"
    assert outcome.error.line == 2


async def test_cancel_while_sleeping_ends_within_100ms(run_lua):
    from oktoscripts.lua.run import LuaRun

    lua = LuaRun("print('before')\nsleep(60)\nprint('after')", limits=Limits(wall_seconds=120))
    task = asyncio.create_task(lua.run())
    while not lua.output_lines:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    asked = time.monotonic()
    lua.cancel()
    outcome = await task
    assert time.monotonic() - asked < 0.1
    assert outcome.status == "cancelled"
    assert outcome.error.kind == "cancelled"
    assert [line.text for line in lua.output_lines] == ["before"]


async def test_cancel_from_another_thread_during_cpu_work(run_lua):
    from oktoscripts.lua.run import LuaRun

    lua = LuaRun("print('go')\nwhile true do end", limits=Limits(wall_seconds=60))
    task = asyncio.create_task(lua.run())
    while not lua.output_lines:
        await asyncio.sleep(0.005)
    asked = time.monotonic()
    await asyncio.to_thread(lua.cancel)
    outcome = await task
    assert time.monotonic() - asked < 0.2
    assert outcome.status == "cancelled"


async def test_cancel_before_start(run_lua):
    from oktoscripts.lua.run import LuaRun

    lua = LuaRun("print('never')")
    lua.cancel()
    outcome = await lua.run()
    assert outcome.status == "cancelled" and lua.output_lines == []


async def test_cpu_heavy_run_does_not_hold_up_waiting_runs(run_lua, lua_pool):
    from oktoscripts.lua.run import LuaRun

    busy = LuaRun("while true do end", limits=Limits(wall_seconds=10), executor=lua_pool)
    busy_task = asyncio.create_task(busy.run())
    started = time.monotonic()
    outcomes = await asyncio.gather(*(run_lua("sleep(0.2) return 1") for _ in range(20)))
    assert all(o.status == "succeeded" for o, _, _ in outcomes)
    assert time.monotonic() - started < 2  # the busy run goes on for 10 s
    assert not busy_task.done()
    busy.cancel()
    assert (await busy_task).status == "cancelled"


async def test_many_sleeping_runs_at_once(run_lua):
    started = time.monotonic()
    outcomes = await asyncio.gather(*(run_lua("sleep(0.3) return 7") for _ in range(200)))
    assert [o.result for o, _, _ in outcomes] == [7] * 200
    assert time.monotonic() - started < 5


async def test_listener_runs_callbacks_in_order_and_the_run_listens(test_bindings):
    from oktoscripts.lua.run import LuaRun

    statuses, events = [], []
    lua = LuaRun(
        """
        local seen = 0
        test_listen(function(ev)
          sleep(0.01)
          seen = seen + 1
          print("event", ev.n, seen)
        end)
        return "main done"
        """,
        run_id="listen-1",
        on_status=statuses.append,
        on_listener_event=events.append,
    )
    task = asyncio.create_task(lua.run())
    while "listening" not in statuses:
        await asyncio.sleep(0.01)
    source = test_bindings["listen-1"]
    for n in range(1, 6):
        source.queue.put_nowait({"n": n})
    source.queue.put_nowait(None)  # the source ends: the run ends
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == "main done"
    assert [line.text for line in lua.output_lines] == [f"event\t{n}\t{n}" for n in range(1, 6)]
    assert statuses == ["running", "listening"]
    # The host heard of each event as its callback started (the worker announces them).
    assert events == [{"n": n} for n in range(1, 6)]


async def test_a_failing_listener_event_hook_does_not_disturb_the_run(test_bindings):
    from oktoscripts.lua.run import LuaRun

    def broken(event):
        raise RuntimeError("hook broke")

    lua = LuaRun(
        "test_listen(function(ev) print(ev.n) end)", run_id="listen-hook", on_listener_event=broken
    )
    task = asyncio.create_task(lua.run())
    while "listen-hook" not in test_bindings:
        await asyncio.sleep(0.01)
    test_bindings["listen-hook"].queue.put_nowait({"n": 1})
    test_bindings["listen-hook"].queue.put_nowait(None)
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.status == "succeeded"
    assert [line.text for line in lua.output_lines] == ["1"]


async def test_listener_parallel_callbacks(test_bindings):
    from oktoscripts.lua.run import LuaRun

    lua = LuaRun("test_listen(function(ev) sleep(0.2) print(ev.n) end, 5)", run_id="listen-2")
    task = asyncio.create_task(lua.run())
    while "listen-2" not in test_bindings:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    for n in range(5):
        test_bindings["listen-2"].queue.put_nowait({"n": n})
    test_bindings["listen-2"].queue.put_nowait(None)
    outcome = await asyncio.wait_for(task, 5)
    assert outcome.status == "succeeded"
    assert time.monotonic() - started < 0.9  # five 0.2 s callbacks side by side, not 1 s
    assert sorted(line.text for line in lua.output_lines) == ["0", "1", "2", "3", "4"]


async def test_listening_run_is_cancelled(test_bindings):
    from oktoscripts.lua.run import LuaRun

    lua = LuaRun("test_listen(function(ev) print(ev.n) end)", run_id="listen-3")
    task = asyncio.create_task(lua.run())
    while "listen-3" not in test_bindings:
        await asyncio.sleep(0.01)
    test_bindings["listen-3"].queue.put_nowait({"n": 1})
    while not lua.output_lines:
        await asyncio.sleep(0.01)
    lua.cancel()
    outcome = await asyncio.wait_for(task, 1)
    assert outcome.status == "cancelled"


async def test_error_in_a_listener_callback_fails_the_run(test_bindings):
    from oktoscripts.lua.run import LuaRun

    lua = LuaRun("test_listen(function(ev)\n  local x = ev.missing.field\nend)", run_id="listen-4")
    task = asyncio.create_task(lua.run())
    while "listen-4" not in test_bindings:
        await asyncio.sleep(0.01)
    test_bindings["listen-4"].queue.put_nowait({"n": 1})
    outcome = await asyncio.wait_for(task, 2)
    assert outcome.status == "failed"
    assert outcome.error.message == "script:2: attempt to index field 'missing' (a nil value)"


async def test_endless_loop_in_a_listener_callback_hits_a_limit(test_bindings):
    from oktoscripts.lua.run import LuaRun

    lua = LuaRun(
        "test_listen(function(ev)\n  while true do end\nend)",
        run_id="listen-5",
        limits=Limits(wall_seconds=0.5),
    )
    task = asyncio.create_task(lua.run())
    while "listen-5" not in test_bindings:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.6)  # listening for longer than the wall-clock limit is fine
    assert not task.done()
    test_bindings["listen-5"].queue.put_nowait({"n": 1})
    outcome = await asyncio.wait_for(task, 3)
    assert outcome.status == "limit_exceeded"
    assert outcome.error.limit == "wall_seconds" and outcome.error.line == 2
