"""__gc finalizers (of newproxy(true) userdata) run within the run's limits,
never when the collector happens to free their object (with hooks off, in a
conversion, or when the finished runtime is closed)."""

from __future__ import annotations

import pytest

from oktoscripts.lua.limits import Limits
from oktoscripts.lua.outcome import RunOutcome
from oktoscripts.lua.runtime import lupa_module
from oktoscripts.lua.threads import LuaThreadPool

from .conftest import assert_next_run_is_prompt

RUNTIMES = ["lua51", "luajit"]

# Kept alive to the end: the finalizer used to run when the runtime was closed.
SPINNING = (
    "local p = newproxy(true); getmetatable(p).__gc = function() while true do end end; "
    'KEEP = p; return "ok"'
)
BACKTRACKING = (
    "local p = newproxy(true)\n"
    'getmetatable(p).__gc = function() string.find(string.rep("a", 1500), ".-.-b") end\n'
    'KEEP = p; return "ok"'
)
ALLOCATING = (
    "local p = newproxy(true)\n"
    "getmetatable(p).__gc = function()\n"
    '  local t = {} for i = 1, 1e7 do t[i] = ("x"):rep(64) .. i end\nend\n'
    'KEEP = p; return "ok"'
)
# Unreachable at once: collected, and finalized, while the run goes on.
CHURN = "local t = {}\nfor i = 1, 3e5 do t[i % 1000] = {i} end\n"


def collected(finalizer: str) -> str:
    return (
        "for i = 1, 20 do\n"
        f"  local p = newproxy(true); getmetatable(p).__gc = function() {finalizer} end\n"
        f"end\n{CHURN}return 'done'"
    )


async def succeeds_leaving_its_thread_free(run_lua, runtime: str, source: str) -> RunOutcome:
    """`source` succeeds on a pool of one Lua thread, which is neither stuck
    nor busy afterwards (the next run on it is done at once)."""
    pool = LuaThreadPool(workers=1, max_stuck=1)
    try:
        limits = Limits(wall_seconds=5, instructions=50_000_000)
        outcome, _, _ = await run_lua(source, runtime=runtime, executor=pool, limits=limits)
        assert outcome.status == "succeeded", outcome
        await assert_next_run_is_prompt(run_lua, pool)
        assert pool.stuck == 0
        return outcome
    finally:
        pool.shutdown(wait=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_finalizers_of_objects_alive_at_the_end_never_run(run_lua, runtime):
    # Five of them used to wedge every Lua thread of both workers.
    pool = LuaThreadPool(workers=1, max_stuck=1)
    try:
        for source in [SPINNING] * 5 + [BACKTRACKING, ALLOCATING]:
            limits = Limits(wall_seconds=5, memory_bytes=32 << 20)
            outcome, _, _ = await run_lua(source, runtime=runtime, executor=pool, limits=limits)
            assert outcome.status == "succeeded" and outcome.result == "ok"
        await assert_next_run_is_prompt(run_lua, pool)
        assert pool.stuck == 0
    finally:
        pool.shutdown(wait=False)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_finalizer_runs_within_the_run(run_lua, runtime):
    source = (
        "local count = 0\n"
        "for i = 1, 50 do\n"
        "  local p = newproxy(true)\n"
        "  getmetatable(p).__gc = function(self) count = count + 1 end\n"
        f"end\n{CHURN}return count"
    )
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded"
    assert 0 < outcome.result <= 50


@pytest.mark.parametrize(
    "finalizer, limits, limit",
    [
        ("while true do end", Limits(instructions=2_000_000, wall_seconds=20), "instructions"),
        (
            "local t = {} for i = 1, 1e7 do t[i] = ('x'):rep(64) .. i end",
            Limits(memory_bytes=32 << 20),
            "memory",
        ),
    ],
    ids=["spinning", "allocating"],
)
@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_finalizer_is_held_to_the_limits_of_its_run(
    run_lua, lua_pool, runtime, finalizer, limits, limit
):
    stuck_before = lua_pool.stuck
    outcome, _, _ = await run_lua(collected(finalizer), runtime=runtime, limits=limits)
    assert outcome.status == "limit_exceeded", outcome
    assert outcome.error.limit == limit
    assert lua_pool.stuck <= stuck_before


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_finalizer_errors_are_reported_and_the_run_goes_on(run_lua, runtime):
    outcome, output, _ = await run_lua(collected("error('oops')"), runtime=runtime)
    assert outcome.status == "succeeded" and outcome.result == "done"
    assert output and all("error in __gc finalizer: " in line for line in output)
    assert "oops" in output[0]
    outcome, output, _ = await run_lua(collected("sleep(1)"), runtime=runtime)
    assert outcome.status == "succeeded"
    assert output[0].endswith(
        ("a finalizer cannot wait or yield", "attempt to yield across metamethod/C-call boundary")
    )


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_proxy_metatable_works_as_before(run_lua, runtime):
    source = """
    local p = newproxy(true)
    local mt = getmetatable(p)
    mt.__index = function(_, key) return key .. "!" end
    mt.__gc = print
    local shared = newproxy(p)
    -- A plain table, as in Lua: it may have a metatable of its own, which
    -- the proxy does not consult (Lua reads metamethods raw).
    local own_mt = setmetatable(mt, { __index = { __len = function() return 1 end } }) == mt
    return p.x, shared.y, mt.__gc == print, getmetatable(p) == mt, getmetatable(shared) == mt,
      own_mt, pcall(function() return #p end)
    """
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    *values, ok, err = outcome.result
    assert values == ["x!", "y!", True, True, True, True]
    assert not ok and err.startswith("script:11: attempt to get length of") and "userdata" in err


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_proxies_made_in_a_loop_are_finalized_as_it_goes(run_lua, runtime):
    # Their finalizers used to wait for the next limit check, up to 50,000
    # iterations away: the queued objects outlived each collection, every one
    # longer than the last, and 200,000 proxies took 50 MB of heap.
    source = """
    local finalized = 0
    for i = 1, 200000 do
      local p = newproxy(true)
      getmetatable(p).__gc = function() finalized = finalized + 1 end
    end
    return finalized
    """
    outcome, _, _ = await run_lua(source, runtime=runtime, limits=Limits(memory_bytes=16 << 20))
    assert outcome.status == "succeeded", outcome
    assert outcome.result > 150_000


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_finalizer_set_after_the_collector_freed_a_proxy_of_its_metatable_runs(
    run_lua, runtime
):
    # A proxy gets a real __gc only once its script sets one; the collector
    # may by then have noted that the metatable has none (a proxy sharing it
    # died first). The finalizer set afterwards must still run, within the run.
    source = f"""
    local count = 0
    local p = newproxy(true)
    do local shared = newproxy(p) end
    {CHURN}
    getmetatable(p).__gc = function() count = count + 1 end
    p = nil
    {CHURN}
    {CHURN}
    return count
    """
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome
    assert outcome.result == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_script_cannot_take_the_real_metatable_of_a_proxy(run_lua, runtime):
    # Setting __metatable to nil through the stand-in used to put it in the
    # real metatable: getmetatable then gave the real one, and a __gc set
    # there was called by the collector outside every limit (on Lua 5.1 the
    # run never ended, and nothing else in its process ran again).
    source = (
        "local p = newproxy(true)\n"
        "local mt = getmetatable(p)\n"
        "mt.__metatable = nil\n"
        "local again = getmetatable(p)\n"
        "again.__gc = function() while true do end end\n"
        f"KEEP = p\n{CHURN}return again == mt, mt.__metatable"
    )
    outcome = await succeeds_leaving_its_thread_free(run_lua, runtime, source)
    assert outcome.result == [True, None]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_the_collector_runs_no_script_code_through_a_proxys_own_metatable(run_lua, runtime):
    # The engine looks the finalizer up in the proxy's own table while the
    # collector runs, outside every limit: an __index of that table (Lua
    # reads metamethods raw, and so must the engine) would spin there.
    source = (
        "for i = 1, 50 do\n"
        "  local p = newproxy(true)\n"
        "  setmetatable(getmetatable(p), { __index = function() while true do end end })\n"
        "end\n"
        f"{CHURN}return 'done'"
    )
    await succeeds_leaving_its_thread_free(run_lua, runtime, source)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_proxy_behaves_as_its_metatable_says(run_lua, runtime):
    source = """
    local p = newproxy(true)
    local mt = getmetatable(p)
    local ok, err = pcall(function() return p.x end)
    local store = {}
    mt.__index = store
    mt.__newindex = store
    p.answer = 42
    mt.__tostring = function() return "a proxy" end
    mt.__len = function() return 7 end
    mt.__call = function(self, a) return a * 2 end
    mt.label = "kept"
    local read = table.concat({
      tostring(mt.__index == store), tostring(mt.__newindex == store), tostring(mt.__gc),
      mt.label, tostring(mt.__metatable) }, " ")
    mt.__newindex = function(_, key, value) rawset(store, key, value + 1) end
    p.other = 1
    return err, p.answer, store.other, tostring(p), #p, p(21), read
    """
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    err, answer, other, text, length, called, read = outcome.result
    assert err.startswith("script:4: attempt to index") and "userdata" in err
    assert [answer, other, text, length, called] == [42, 2, "a proxy", 7, 42]
    assert read == "true true nil kept nil"


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_locked_proxy_metatable_still_finalizes_within_the_run(run_lua, runtime):
    source = f"""
    local count = 0
    for i = 1, 20 do
      local p = newproxy(true)
      local mt = getmetatable(p)
      mt.__metatable = "locked"
      mt.__gc = function() count = count + 1 end
      assert(getmetatable(p) == "locked" and mt.__metatable == "locked")
      mt.__metatable = nil
      assert(getmetatable(p) == mt)
      mt.__metatable = false
    end
    {CHURN}
    return count
    """
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    assert 0 < outcome.result <= 20


# Every event a metatable can answer, on proxies whose metatable has nothing
# for it and then everything; positions, addresses and variable names
# (which Lua puts in its own messages) left out.
EVERY_EVENT = r"""
local log = {}
local function try(name, f)
  local ok, r = pcall(f)
  if not ok then
    r = "error: " .. tostring(r):gsub("^[^:]*:%d+: ", "")
      :gsub(" %a+ '[^']*' %(a (%a+) value%)", " a %1 value")
  end
  log[#log + 1] = name .. " = " .. tostring(r):gsub("0x%x+", "ADDRESS")
end
local p, q = newproxy(true), newproxy(true)
local mt, qmt = getmetatable(p), getmetatable(q)
local adder = { }
setmetatable(adder, { __add = function(a, b) return "table's __add" end })
local function all(label)
  try(label .. " index", function() return p.x end)
  try(label .. " newindex", function() p.x = 1 return "set" end)
  try(label .. " call", function() return p(2) end)
  try(label .. " len", function() return #p end)
  try(label .. " unm", function() return -p end)
  try(label .. " add", function() return p + 1 end)
  try(label .. " radd", function() return 1 + p end)
  try(label .. " stradd", function() return "2" + p end)
  try(label .. " tableadd", function() return p + adder end)
  try(label .. " pow", function() return p ^ 2 end)
  try(label .. " concat", function() return p .. "s" end)
  try(label .. " rconcat", function() return 3 .. p end)
  try(label .. " eq", function() return p == q end)
  try(label .. " eq self", function() return p == p end)
  try(label .. " lt", function() return p < q end)
  try(label .. " le", function() return p <= q end)
  try(label .. " lt number", function() return p < 1 end)
  try(label .. " tostring", function() return tostring(p) end)
  try(label .. " getmetatable", function() return getmetatable(p) == mt end)
end
all("bare")
local function both(event, fn) mt[event], qmt[event] = fn, fn end
local store = {}
both("__index", store)
both("__newindex", store)
mt.__call = function(self, a) return a * 10 end
mt.__len = function(a, b) return "len " .. tostring(a == p) .. " " .. tostring(b) end
mt.__unm = function(a, b) return "unm " .. tostring(a == p) .. " " .. tostring(b == p) end
both("__add", function(a, b) return "add " .. type(a) .. " " .. type(b) end)
mt.__pow = function(a, b) return "pow " .. b end
both("__concat", function(a, b) return "concat " .. type(a) .. " " .. type(b) end)
local lt = function(a, b) return a == p end
both("__lt", lt)
mt.__eq = function() return true end
mt.__tostring = function() return "a proxy" end
all("set")
qmt.__eq = mt.__eq
try("eq shared", function() return p == q end)
qmt.__lt = function() return false end
try("lt differing", function() return p < q end)
try("le differing", function() return p <= q end)
mt.__le = function() return "le" end
qmt.__le = mt.__le
try("le", function() return p <= q end)
mt.__call = store
try("call a table", function() return p(1) end)
mt.__metatable = "locked"
try("locked", function() return getmetatable(p) end)
mt.__metatable = nil
try("unlocked", function() return getmetatable(p) == mt end)
local shared = newproxy(p)
try("shared", function() return getmetatable(shared) == mt and shared.x end)
try("rawequal", function() return rawequal(getmetatable(p), mt) end)
return table.concat(log, "\n")
"""


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_proxy_answers_every_event_as_it_does_in_lua(run_lua, runtime):
    bare = lupa_module(runtime).LuaRuntime().execute(EVERY_EVENT)
    outcome, _, _ = await run_lua(EVERY_EVENT, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result.splitlines() == bare.splitlines()
