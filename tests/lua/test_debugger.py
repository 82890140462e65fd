"""The debugger in the engine: breakpoints, steps, inspection, errors, limits,
on both runtimes (a debug run is a LuaRun with a DebugSession)."""

from __future__ import annotations

import asyncio
import time

import pytest

from oktoscripts.lua.debugger import DebugError, DebugSession
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun
from oktoscripts.lua.threads import LuaThreadPool

from .conftest import assert_next_run_is_prompt

RUNTIMES = ["luajit", "lua51"]


class Debugging:
    """A debug run in progress, with a way to wait for its next pause."""

    def __init__(self, source: str, pool, runtime: str, **kwargs) -> None:
        self.events: list[dict] = []
        self.pauses: asyncio.Queue = asyncio.Queue()
        self.session = DebugSession(
            on_event=self._on_event, pause_limit_s=kwargs.pop("pause_limit_s", 30)
        )
        kwargs.setdefault("limits", Limits(wall_seconds=10))
        self.run = LuaRun(source, runtime=runtime, executor=pool, debug=self.session, **kwargs)
        self.task = asyncio.ensure_future(self.run.run())

    def _on_event(self, event: dict) -> None:
        self.events.append(event)
        if event["event"] == "paused":
            self.pauses.put_nowait(event)

    async def paused(self) -> dict:
        getter = asyncio.ensure_future(self.pauses.get())
        done, _ = await asyncio.wait({getter, self.task}, timeout=10, return_when="FIRST_COMPLETED")
        if getter not in done:
            getter.cancel()
            outcome = self.task.result() if self.task.done() else None
            raise AssertionError(f"no pause; the run ended: {outcome}")
        return getter.result()

    async def locals_of(self, frame: int = 1) -> dict:
        scopes = await self.session.scopes(frame)
        listing = await self.session.variables(scopes[0]["ref"])
        return {item["name"]: item["value"] for item in listing["items"]}

    async def outcome(self):
        return await asyncio.wait_for(self.task, 10)

    def output(self) -> list[str]:
        return [line.text for line in self.run.output_lines]


@pytest.fixture
def debug_run(lua_pool):
    runs: list[Debugging] = []

    def start(source: str, runtime: str, breakpoints=(), break_on_error=False, **kwargs):
        run = Debugging(source, lua_pool, runtime, **kwargs)
        run.session.configure(
            [{"line": n} if isinstance(n, int) else n for n in breakpoints], break_on_error
        )
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.run.cancel()


STEPS = """local function add(a, b)
  local sum = a + b
  return sum
end
local x = 1
local y = add(x, 2)
local z = y * 2
return z
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_breakpoint_locals_and_step_over_into_out(debug_run, runtime):
    run = debug_run(STEPS, runtime, breakpoints=[6])
    pause = await run.paused()
    assert (pause["reason"], pause["line"]) == ("breakpoint", 6)
    assert [f["name"] for f in pause["frames"]] == ["main chunk"]
    assert (await run.locals_of())["x"] == "1"

    run.session.resume("in")
    pause = await run.paused()
    assert (pause["line"], [f["name"] for f in pause["frames"]]) == (2, ["add", "main chunk"])
    assert await run.locals_of() == {"a": "1", "b": "2"}
    # The caller's frame keeps its own locals.
    assert (await run.locals_of(2))["x"] == "1"

    run.session.resume("over")
    assert (await run.paused())["line"] == 3
    assert (await run.locals_of())["sum"] == "3"

    run.session.resume("out")
    pause = await run.paused()
    assert pause["line"] == 7 and len(pause["frames"]) == 1

    run.session.resume("over")
    assert (await run.paused())["line"] == 8
    run.session.resume("continue")
    outcome = await run.outcome()
    assert (outcome.status, outcome.result) == ("succeeded", 6)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_step_over_does_not_stop_inside_calls(debug_run, runtime):
    run = debug_run(STEPS, runtime, breakpoints=[6])
    await run.paused()
    run.session.resume("over")
    assert (await run.paused())["line"] == 7
    run.session.resume("continue")
    assert (await run.outcome()).result == 6


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_conditional_hit_count_and_logpoint(debug_run, runtime):
    source = """local total = 0
for i = 1, 10 do
  total = total + i
end
return total
"""
    run = debug_run(
        source,
        runtime,
        breakpoints=[
            {"line": 3, "condition": "i % 2 == 0", "hit": 3},
        ],
    )
    pause = await run.paused()
    # The third hit whose condition holds.
    assert pause["line"] == 3 and (await run.locals_of())["i"] == "6"
    run.session.configure([{"line": 3, "log": "i={i} total={total}"}])
    run.session.resume("continue")
    outcome = await run.outcome()
    assert outcome.result == 55
    assert run.output() == ["i=7 total=21", "i=8 total=28", "i=9 total=36", "i=10 total=45"]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_run_to_cursor_and_stop(debug_run, runtime):
    source = "local a = 1\nlocal b = 2\nlocal c = 3\nwhile true do end\n"
    run = debug_run(source, runtime, breakpoints=[1])
    assert (await run.paused())["line"] == 1
    run.session.resume("cursor", 3)
    pause = await run.paused()
    assert pause["line"] == 3 and pause["reason"] == "step"
    run.session.stop()
    outcome = await run.outcome()
    assert outcome.status == "cancelled"


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_pause_on_demand_in_a_busy_loop(debug_run, runtime):
    source = "local n = 0\nwhile true do\n  n = n + 1\nend\n"
    run = debug_run(source, runtime)
    await asyncio.sleep(0.2)
    run.session.pause()
    pause = await run.paused()
    assert pause["reason"] == "pause" and pause["line"] in (2, 3)
    assert int((await run.locals_of())["n"]) > 0
    run.session.stop()
    assert (await run.outcome()).status == "cancelled"


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_tables_expand_lazily_in_pages_without_metamethods(debug_run, runtime):
    source = """calls = 0
local big = {}
for i = 1, 250 do big[i] = i * 10 end
local tricky = setmetatable({ real = 1 }, {
  __index = function(t, k) calls = calls + 1 return 'made up' end,
  __tostring = function() calls = calls + 1 return 'fake' end,
  __pairs = function() calls = calls + 1 return next, {}, nil end,
  __metatable = 'locked',
})
local s = "a\\nb"
return calls
"""
    run = debug_run(source, runtime, breakpoints=[11])
    await run.paused()
    scopes = await run.session.scopes(1)
    assert [s["name"] for s in scopes] == ["Locals", "Upvalues", "Globals"]
    listing = await run.session.variables(scopes[0]["ref"])
    by_name = {item["name"]: item for item in listing["items"]}
    assert by_name["s"]["value"] == '"a\\\nb"'
    assert by_name["tricky"]["value"].startswith("table: ")
    page = await run.session.variables(by_name["big"]["ref"], 0, 100)
    assert len(page["items"]) == 100 and page["more"]
    last = await run.session.variables(by_name["big"]["ref"], 200, 100)
    assert len(last["items"]) == 50 and not last["more"]
    inside = await run.session.variables(by_name["tricky"]["ref"])
    names = [item["name"] for item in inside["items"]]
    assert names == ["real", "[metatable]"]
    globals_ = await run.session.variables(scopes[2]["ref"])
    assert {"calls", "args"} <= {item["name"] for item in globals_["items"]}
    assert "print" not in {item["name"] for item in globals_["items"]}
    run.session.resume("continue")
    assert (await run.outcome()).result == 0  # no metamethod ran


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_proxy_shows_the_metatable_its_script_gave_it(debug_run, runtime):
    # Not the metatable the engine's proxies share, with its handlers.
    source = """local p = newproxy(true)
getmetatable(p).label = "mine"
getmetatable(p).__tostring = function() calls = (calls or 0) + 1 return "fake" end
return calls
"""
    run = debug_run(source, runtime, breakpoints=[4])
    await run.paused()
    scopes = await run.session.scopes(1)
    listing = await run.session.variables(scopes[0]["ref"])
    proxy = {item["name"]: item for item in listing["items"]}["p"]
    assert proxy["value"].startswith("userdata: ")
    inside = await run.session.variables(proxy["ref"])
    assert [item["name"] for item in inside["items"]] == ["[metatable]"]
    mt = await run.session.variables(inside["items"][0]["ref"])
    assert sorted(item["name"] for item in mt["items"]) == ["__tostring", "label"]
    run.session.resume("continue")
    assert (await run.outcome()).result is None  # no metamethod ran


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_watch_expressions_in_the_frame_with_a_budget(debug_run, runtime):
    source = """local up = 10
local function f(x)
  local y = x + up
  return y
end
local r = f(5)
return r
"""
    run = debug_run(source, runtime, breakpoints=[4])
    await run.paused()
    s = run.session
    assert (await s.evaluate("x * y + up"))["value"] == "85"
    assert (await s.evaluate("{x, y}"))["ref"] > 0
    assert (await s.evaluate("up", 2))["value"] == "10"
    with pytest.raises(DebugError, match="instruction budget"):
        await s.evaluate("(function() while true do end end)()")
    with pytest.raises(DebugError, match="cannot call the platform's functions"):
        await s.evaluate("sleep(1)")
    with pytest.raises(DebugError, match="watch:1:"):
        await s.evaluate("x +")
    s.resume("continue")
    outcome = await run.outcome()
    assert (outcome.status, outcome.result) == ("succeeded", 15)
    # The watches' work did not count as the run's.
    assert outcome.metrics["instructions"] < 50_000


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_pause_on_errors_caught_by_pcall_and_uncaught(debug_run, runtime):
    source = """local function risky(n)
  local half = n / 2
  error("bad " .. n)
end
local ok, err = pcall(risky, 4)
local after = "caught"
risky(6)
"""
    run = debug_run(source, runtime, break_on_error=True)
    pause = await run.paused()
    assert pause["reason"] == "exception" and pause["line"] == 3
    assert "bad 4" in pause["message"]
    assert (await run.locals_of())["half"] == "2"
    run.session.resume("over")
    assert (await run.paused())["line"] == 6  # pcall returned false and the script went on
    run.session.resume("continue")
    pause = await run.paused()
    assert pause["reason"] == "exception" and "bad 6" in pause["message"]
    assert (await run.locals_of())["half"] == "3"
    run.session.resume("continue")
    outcome = await run.outcome()
    assert outcome.status == "failed" and "bad 6" in outcome.error.message


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_breakpoints_inside_coroutines_and_pcall(debug_run, runtime):
    source = """local co = coroutine.create(function(a)
  local inside = a + 1
  coroutine.yield(inside)
  return inside * 2
end)
local _, first = coroutine.resume(co, 1)
local ok, v = pcall(function()
  local p = first + 100
  return p
end)
local _, second = coroutine.resume(co)
return {first, v, second}
"""
    run = debug_run(source, runtime, breakpoints=[2, 9, 4])
    assert (await run.paused())["line"] == 2
    assert (await run.locals_of())["a"] == "1"
    run.session.resume("continue")
    pause = await run.paused()
    assert pause["line"] == 9 and (await run.locals_of())["p"] == "102"
    run.session.resume("continue")
    assert (await run.paused())["line"] == 4
    run.session.resume("continue")
    assert (await run.outcome()).result == [2, 102, 4]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_across_a_waiting_call(debug_run, runtime, test_bindings):
    source = """local answer = test_echo({value = 42}, 0.05)
local seen = answer.value
return seen
"""
    run = debug_run(source, runtime, breakpoints=[1])
    assert (await run.paused())["line"] == 1
    run.session.resume("over")
    assert (await run.paused())["line"] == 2
    assert (await run.locals_of())["answer"].startswith("table: ")
    run.session.resume("continue")
    assert (await run.outcome()).result == 42


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_paused_time_counts_against_no_limit(debug_run, runtime):
    source = "local a = 1\nlocal b = 2\nreturn a + b\n"
    run = debug_run(source, runtime, breakpoints=[2], limits=Limits(wall_seconds=0.5))
    await run.paused()
    await asyncio.sleep(0.8)  # longer than the run's own wall-clock limit
    run.session.resume("continue")
    outcome = await run.outcome()
    assert (outcome.status, outcome.result) == ("succeeded", 3)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_paused_run_is_cancelled_by_its_debug_limit(debug_run, runtime):
    run = debug_run("local a = 1\nreturn a\n", runtime, breakpoints=[2], pause_limit_s=0.3)
    await run.paused()
    started = time.monotonic()
    outcome = await run.outcome()
    assert outcome.status == "cancelled"
    assert "paused longer than its limit of 0.3 s" in outcome.error.message
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_instruction_limit_still_holds_in_a_debug_run(debug_run, runtime):
    run = debug_run("while true do end\n", runtime, limits=Limits(instructions=200_000))
    outcome = await run.outcome()
    assert outcome.status == "limit_exceeded" and outcome.error.limit == "instructions"


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_no_pause_where_a_yield_is_impossible(debug_run, runtime):
    source = """local s = string.gsub("ab", "%w", function(c)
  return c:upper()
end)
return s
"""
    run = debug_run(source, runtime, breakpoints=[2])
    outcome = await run.outcome()
    assert (outcome.status, outcome.result) == ("succeeded", "AB")
    assert any("cannot pause at line 2" in line for line in run.output())


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_listener_callback_pauses(debug_run, runtime, test_bindings):
    source = """test_listen(function(event)
  local got = event.n
  print("event " .. got)
end)
"""
    run = debug_run(source, runtime, breakpoints=[2])
    for _ in range(100):
        if run.run.run_id in test_bindings:
            break
        await asyncio.sleep(0.02)
    queue = test_bindings[run.run.run_id]
    queue.queue.put_nowait({"n": 7})
    pause = await run.paused()
    assert pause["line"] == 2 and (await run.locals_of())["event"].startswith("table: ")
    run.session.resume("continue")
    queue.queue.put_nowait(None)
    outcome = await run.outcome()
    assert outcome.status == "succeeded" and run.output() == ["event 7"]


async def test_normal_runs_have_no_debugger(run_lua):
    outcome, _, _ = await run_lua(
        "local names = {}\nfor k in pairs(_G) do names[#names + 1] = k end\nreturn #names"
    )
    plain = outcome.result
    outcome, _, _ = await run_lua("return debug.getlocal")
    assert outcome.result is None
    assert plain > 0


def test_bad_breakpoints_are_refused():
    session = DebugSession()
    for bad in (
        [{"line": 0}],
        [{"line": "3"}],
        [{"line": 2, "hit": -1}],
        ["x"],
        [{"line": 2, "condition": 5}],
    ):
        with pytest.raises(DebugError):
            session.configure(bad)
    with pytest.raises(DebugError, match="not paused"):
        session.resume("continue")
    with pytest.raises(DebugError, match="unknown command"):
        session.resume("jump")


LISTENER = """test_listen(function(event)
  local got = event.n
  test_echo(nil, 0.05)
  print("event " .. got)
end, 2)
"""


async def _listener_queue(run, test_bindings):
    for _ in range(200):
        if run.run.run_id in test_bindings:
            return test_bindings[run.run.run_id].queue
        await asyncio.sleep(0.01)
    raise AssertionError("the listener did not start")


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_other_callback_activations_keep_going(debug_run, runtime, test_bindings):
    run = debug_run(
        LISTENER,
        runtime,
        breakpoints=[{"line": 2, "condition": "event.n == 1"}],
        run_id="listeners-go-on",
    )
    queue = await _listener_queue(run, test_bindings)
    queue.put_nowait({"n": 1})
    pause = await run.paused()
    assert pause["kind"] == "listener" and pause["line"] == 2
    queue.put_nowait({"n": 2})
    for _ in range(200):  # the other callback runs to its end meanwhile
        if "event 2" in run.output():
            break
        await asyncio.sleep(0.01)
    assert run.output() == ["event 2"]
    run.session.resume("continue")
    queue.put_nowait(None)
    assert (await run.outcome()).status == "succeeded"
    assert run.output() == ["event 2", "event 1"]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_pause_all_pauses_the_other_activations(debug_run, runtime, test_bindings):
    run = debug_run(
        LISTENER,
        runtime,
        breakpoints=[{"line": 2, "condition": "event.n == 1"}],
        run_id="listeners-pause-all",
    )
    run.session.configure(pause_all=True)
    queue = await _listener_queue(run, test_bindings)
    queue.put_nowait({"n": 1})
    first = await run.paused()
    queue.put_nowait({"n": 2})
    second = await run.paused()
    assert second["reason"] == "pause" and second["activation"] != first["activation"]
    assert len(run.session.snapshot()["pauses"]) == 2
    got = await run.session.evaluate("event.n", activation=first["activation"])
    assert got["value"] == "1"
    run.session.resume("continue", activation=first["activation"])
    run.session.resume("continue", activation=second["activation"])
    queue.put_nowait(None)
    assert (await run.outcome()).status == "succeeded"
    assert sorted(run.output()) == ["event 1", "event 2"]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_hundred_paused_runs_hold_no_lua_thread(run_lua, runtime):
    pool = LuaThreadPool(workers=2)
    runs = []
    try:
        for _ in range(100):
            run = Debugging("local a = 1\nreturn a\n", pool, runtime)
            run.session.configure([{"line": 2}])
            runs.append(run)
        for run in runs:
            await run.paused()
        await assert_next_run_is_prompt(run_lua, pool)
        for run in runs:
            run.session.resume("continue")
        outcomes = await asyncio.gather(*(run.outcome() for run in runs))
        assert {o.result for o in outcomes} == {1}
    finally:
        for run in runs:
            run.run.cancel()
        pool.shutdown(wait=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_breakpoints_in_metamethods_and_iterators(debug_run, runtime):
    source = """local t = setmetatable({}, {__index = function(_, k)
  return k .. "!"
end})
local function iter(_, i)
  if i < 2 then return i + 1 end
end
local seen = {}
for i in iter, nil, 0 do
  seen[#seen + 1] = t[i]
end
return seen
"""
    run = debug_run(source, runtime, breakpoints=[2, 5])
    if runtime == "luajit":
        # LuaJIT yields across metamethods and iterators: it pauses there.
        for _ in range(5):
            pause = await run.paused()
            assert pause["line"] in (2, 5)
            run.session.resume("continue")
    outcome = await run.outcome()
    assert (outcome.status, outcome.result) == ("succeeded", ["1!", "2!"])
    if runtime == "lua51":
        assert any("cannot pause at line 5" in line for line in run.output())
        assert any("cannot pause at line 2" in line for line in run.output())


async def test_a_watch_is_an_expression(debug_run):
    run = debug_run("local t = {x = 1}\nreturn t.x\n", "luajit", breakpoints=[2])
    await run.paused()
    with pytest.raises(DebugError, match="watch:1:"):
        await run.session.evaluate("t.x = 5")
    run.session.resume("continue")
    assert (await run.outcome()).result == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_pause_in_a_deep_recursion_shows_its_innermost_frames(debug_run, runtime):
    source = """local function down(n)
  if n == 0 then
    return 0
  end
  return 1 + down(n - 1)
end
return down(1000)
"""
    run = debug_run(source, runtime, breakpoints=[3])
    pause = await run.paused()
    assert len(pause["frames"]) == 200 and pause["frames"][0]["name"] == "down"
    run.session.resume("continue")
    assert (await run.outcome()).result == 1000
