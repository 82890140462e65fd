"""Every limit, and the known holes of count hooks: each ends the run cleanly
as "limit_exceeded", naming the limit and the line, and the engine goes on."""

from __future__ import annotations

import time

import pytest

from oktoscripts.lua.limits import Limits
from oktoscripts.lua.threads import LuaThreadPool

from .conftest import assert_next_run_is_prompt

FEW_INSTRUCTIONS = Limits(instructions=2_000_000, wall_seconds=20)


async def assert_limit(outcome, limit: str, line: int | None = None):
    assert outcome.status == "limit_exceeded", outcome.error
    assert outcome.error.kind == "limit"
    assert outcome.error.limit == limit
    if line is not None:
        assert outcome.error.line == line
        assert outcome.error.message.startswith(f"script:{line}: ")


async def test_endless_loop_hits_the_instruction_limit(run_lua):
    outcome, _, _ = await run_lua(
        "local x = 0\nwhile true do x = x + 1 end", limits=FEW_INSTRUCTIONS
    )
    await assert_limit(outcome, "instructions", line=2)
    assert "instruction limit of 2000000 instructions exceeded" in outcome.error.message
    assert outcome.metrics["instructions"] >= 2_000_000


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_loop_inside_a_coroutine(run_lua, runtime):
    source = "local co = coroutine.wrap(function()\n  while true do end\nend)\nco()"
    outcome, _, _ = await run_lua(source, limits=FEW_INSTRUCTIONS, runtime=runtime)
    await assert_limit(outcome, "instructions", line=2)


async def test_loop_inside_coroutine_resume_is_not_swallowed(run_lua):
    source = """
    local co = coroutine.create(function() while true do end end)
    local ok, err = coroutine.resume(co)
    return "swallowed", ok, err
    """
    outcome, _, _ = await run_lua(source, limits=FEW_INSTRUCTIONS)
    await assert_limit(outcome, "instructions")


@pytest.mark.parametrize(
    "source",
    [
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        "local ok = pcall(pcall, function() while true do end end) return 'swallowed'",
        "for i = 1, 1e9 do pcall(error, 'x') end return 'swallowed'",
    ],
)
@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_pcall_cannot_swallow_the_limit(run_lua, source, runtime):
    limits = Limits(instructions=300_000, wall_seconds=20)
    outcome, _, _ = await run_lua(source, limits=limits, runtime=runtime)
    await assert_limit(outcome, "instructions", line=1)


async def test_wall_clock_limit(run_lua):
    started = time.monotonic()
    outcome, _, _ = await run_lua(
        "local x = 0\nwhile true do x = x + 1 end", limits=Limits(wall_seconds=0.5)
    )
    await assert_limit(outcome, "wall_seconds", line=2)
    assert "wall-clock limit of 0.5 s exceeded" in outcome.error.message
    assert time.monotonic() - started < 1.5


async def test_wall_clock_limit_while_waiting(run_lua):
    started = time.monotonic()
    outcome, _, _ = await run_lua("print('a')\nsleep(30)", limits=Limits(wall_seconds=0.3))
    await assert_limit(outcome, "wall_seconds", line=2)
    assert time.monotonic() - started < 1.3


async def test_long_c_call_is_cut_by_the_wall_clock(run_lua, lua_pool):
    # A backtracking pattern: one C call of a few seconds that no hook interrupts.
    source = 'local s = string.rep("a", 1500)\nreturn string.find(s, ".-.-b")'
    started = time.monotonic()
    outcome, _, _ = await run_lua(source, limits=Limits(wall_seconds=0.5))
    elapsed = time.monotonic() - started
    await assert_limit(outcome, "wall_seconds")
    assert elapsed < 1.5
    # The engine goes on running other runs meanwhile.
    outcome, output, _ = await run_lua("print('next run') return 1")
    assert outcome.status == "succeeded" and output == ["next run"]


async def test_a_stuck_thread_is_abandoned_and_replaced(run_lua):
    # With one Lua thread, the run after a stuck one can only run on the
    # thread that replaced it (it used to wait for the stuck call to end).
    pool = LuaThreadPool(workers=1, max_stuck=1)
    try:
        source = 'local s = string.rep("a", 1500)\nreturn string.find(s, ".-.-b")'
        outcome, _, _ = await run_lua(source, limits=Limits(wall_seconds=0.3), executor=pool)
        assert "could not be interrupted" in outcome.error.message
        await assert_next_run_is_prompt(run_lua, pool)
        assert pool.stuck == 1
    finally:
        pool.shutdown(wait=False)


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_huge_string_rep_hits_the_memory_limit(run_lua, runtime):
    source = 'local s = "x"\ns = string.rep("x", 1e10)\nreturn #s'
    outcome, _, _ = await run_lua(source, runtime=runtime)
    await assert_limit(outcome, "memory", line=2)
    assert "memory limit of 256 MiB exceeded" in outcome.error.message


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_table_growth_hits_the_memory_limit(run_lua, runtime):
    limits = Limits(memory_bytes=32 * 1024 * 1024)
    source = "local t = {}\nlocal i = 0\nwhile true do\n  i = i + 1\n  t[i] = {i}\nend"
    outcome, _, _ = await run_lua(source, limits=limits, runtime=runtime)
    await assert_limit(outcome, "memory")
    assert 3 <= outcome.error.line <= 5
    assert outcome.metrics["peak_memory_bytes"] > 16 * 1024 * 1024


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_memory_error_is_not_catchable(run_lua, runtime):
    limits = Limits(memory_bytes=32 * 1024 * 1024)
    source = """
    local ok = pcall(function() local t = {} while true do t[#t + 1] = {} end end)
    return "swallowed"
    """
    outcome, _, _ = await run_lua(source, limits=limits, runtime=runtime)
    await assert_limit(outcome, "memory")


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_memory_limit_reached_in_a_pcall_is_reported_as_such(run_lua, runtime):
    # The heap is filled to a little below the limit, then a pcall'd loop
    # runs into it: reporting the limit must not itself fail on the full heap
    # (it used to, and the run then ended as a wall-clock limit).
    limit = 2_000_000
    for margin in range(0, 3000, 150):
        source = f"""
        local keep, fill = {{}}, {limit - margin - 4096}
        while gcinfo() * 1024 < fill do keep[#keep + 1] = ("y"):rep(200) .. #keep end
        local pad = {{}}
        pcall(function() while true do pad[#pad + 1] = #pad end end)
        return "swallowed"
        """
        outcome, _, _ = await run_lua(source, runtime=runtime, limits=Limits(memory_bytes=limit))
        await assert_limit(outcome, "memory")


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_rarely_used_function_first_called_at_the_memory_limit(run_lua, runtime):
    # coroutine.create is loaded into the runtime on first use: on a full heap
    # that ends the run at the memory limit, cleanly.
    limit = 2_000_000
    outcomes = set()
    for margin in range(0, 40, 2):
        source = f"""
        local keep = {{}}
        while gcinfo() < {limit // 1024 - margin} do keep[#keep + 1] = ("y"):rep(200) .. #keep end
        local co = coroutine.create(function() return 1 end)
        return select(2, coroutine.resume(co))
        """
        outcome, _, _ = await run_lua(source, runtime=runtime, limits=Limits(memory_bytes=limit))
        if outcome.status != "succeeded":
            await assert_limit(outcome, "memory")
        outcomes.add(outcome.status)
    assert outcomes == {"succeeded", "limit_exceeded"}


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_string_concatenation_growth_hits_the_memory_limit(run_lua, runtime):
    limits = Limits(memory_bytes=32 * 1024 * 1024)
    source = "local s = 'x'\nwhile true do s = s .. s end"
    outcome, _, _ = await run_lua(source, limits=limits, runtime=runtime)
    # (LuaJIT drops the frames of a memory error: its line is that of the
    # last limit check, here the chunk's first.)
    await assert_limit(outcome, "memory", line=2 if runtime == "lua51" else None)


async def test_output_limit(run_lua):
    limits = Limits(output_bytes=1000)
    outcome, output, _ = await run_lua(
        "for i = 1, 1000 do\n  print(i, 'xxxxxxxxx')\nend", limits=limits
    )
    await assert_limit(outcome, "output_bytes", line=2)
    assert sum(len(line) + 1 for line in output) <= 1000
    assert output[0] == "1\txxxxxxxxx"


async def test_output_limit_through_log(run_lua):
    limits = Limits(output_bytes=500)
    outcome, _, _ = await run_lua(
        "for i = 1, 1000 do\n  log('info', 'line', i)\nend", limits=limits
    )
    await assert_limit(outcome, "output_bytes", line=2)


async def test_limits_overrides():
    limits = Limits.with_overrides({"instructions": 5, "wall_seconds": 2, "memory": 1 << 20})
    assert limits.instructions == 5 and limits.wall_seconds == 2.0
    assert limits.memory_bytes == 1 << 20 and limits.output_bytes == Limits().output_bytes
    with pytest.raises(ValueError, match="unknown limit"):
        Limits.with_overrides({"cpu": 1})
    with pytest.raises(ValueError, match="positive"):
        Limits.with_overrides({"wall_seconds": -1})


@pytest.mark.parametrize(
    "source",
    [
        "local x = 0\nwhile true do x = x + 1 end",
        "local s = 0\nfor i = 1, 1e15 do s = s + i % 3 end",
        "local function f(n) return f(n + 1) end\nf(1)",
        "::again::\ngoto again",
        "local f = loadstring('while true do end')\nf()",
    ],
)
async def test_luajit_compiled_loops_are_stopped(run_lua, lua_pool, source):
    # Compiled LuaJIT code never calls hooks: the budget checks written into
    # the script stop it, and the thread comes back (nothing is abandoned).
    stuck_before = lua_pool.stuck
    started = time.monotonic()
    outcome, _, _ = await run_lua(source, runtime="luajit", limits=Limits(wall_seconds=0.5))
    assert time.monotonic() - started < 1.5
    await assert_limit(outcome, "wall_seconds")
    assert outcome.error.line in (1, 2)
    assert "could not be interrupted" not in outcome.error.message
    assert lua_pool.stuck <= stuck_before


async def test_luajit_instruction_limit(run_lua):
    outcome, _, _ = await run_lua(
        "local x = 0\nwhile true do x = x + 1 end", runtime="luajit", limits=FEW_INSTRUCTIONS
    )
    await assert_limit(outcome, "instructions", line=2)


# A nested function already at Lua's limit of 60 upvalues: the checks, which
# need two more, cannot be written into it, so the chunk runs interpreted.
_UPVALUES = [f"u{i}" for i in range(60)]
NO_ROOM_FOR_CHECKS = (
    f"local {', '.join(_UPVALUES[:50])}\nlocal {', '.join(_UPVALUES[50:])}\n"
    f"local function f()\n  local s = {' + '.join(f'({u} or 0)' for u in _UPVALUES)}\n"
    "  while true do s = s + 1 end\nend\nf()\n"
)


@pytest.mark.parametrize(
    "limits, limit",
    [(Limits(wall_seconds=0.5), "wall_seconds"), (FEW_INSTRUCTIONS, "instructions")],
    ids=["wall", "instructions"],
)
async def test_luajit_chunk_that_cannot_be_instrumented_is_stopped(
    run_lua, lua_pool, limits, limit
):
    stuck_before = lua_pool.stuck
    outcome, _, _ = await run_lua(NO_ROOM_FOR_CHECKS, runtime="luajit", limits=limits)
    await assert_limit(outcome, limit, line=5)
    assert "could not be interrupted" not in outcome.error.message
    assert lua_pool.stuck <= stuck_before


async def test_luajit_main_chunk_with_no_room_for_the_counter(run_lua, lua_pool):
    # 200 locals is Lua's limit: the budget counter cannot be one more local
    # of the main function, and goes into a wrapper instead. The loop still
    # ends at the limit, and its thread comes back.
    stuck_before = lua_pool.stuck
    names = ", ".join(f"v{i}" for i in range(200))
    source = f"local {names}\nwhile true do v1 = (v1 or 0) + 1 end"
    outcome, _, _ = await run_lua(source, runtime="luajit", limits=Limits(wall_seconds=0.5))
    await assert_limit(outcome, "wall_seconds", line=2)
    assert "could not be interrupted" not in outcome.error.message
    assert lua_pool.stuck <= stuck_before


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_loop_that_turns_slow_is_still_stopped(run_lua, lua_pool, runtime):
    # Limit checks are spaced by time: many fast iterations space them far
    # apart, and a loop whose iterations then become slow must not run on
    # for long before the next one.
    stuck_before = lua_pool.stuck
    source = """
    local x = 0
    for i = 1, 3e6 do x = x + i end
    while true do
      local s = string.rep("ab", 2000):upper():lower()
      x = x + #s
    end
    """
    started = time.monotonic()
    outcome, _, _ = await run_lua(source, runtime=runtime, limits=Limits(wall_seconds=0.5))
    assert time.monotonic() - started < 1.5
    await assert_limit(outcome, "wall_seconds")
    assert outcome.error.line in (4, 5, 6)
    assert "could not be interrupted" not in outcome.error.message
    assert lua_pool.stuck <= stuck_before


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_instruction_limit_holds_exactly_though_checks_are_spaced(run_lua, runtime):
    # However far apart the checks are, the last one before the limit is
    # placed at the limit.
    limits = Limits(instructions=5_000_000, wall_seconds=20)
    outcome, _, _ = await run_lua(
        "local x = 0\nwhile true do x = x + 1 end", runtime=runtime, limits=limits
    )
    await assert_limit(outcome, "instructions", line=2)
    assert 5_000_000 < outcome.metrics["instructions"] <= 5_000_000 + 1_000


async def test_luajit_keeps_line_numbers_and_results(run_lua):
    source = "local t = {}\nfor i = 1, 3 do\n  t[i] = i * i\nend\nlocal x = nil\nreturn t, x.y"
    outcome, _, _ = await run_lua(source, runtime="luajit")
    assert outcome.error.message == "script:6: attempt to index local 'x' (a nil value)"
    assert outcome.error.traceback == [{"source": "script", "line": 6, "function": "main chunk"}]


async def test_repeating_an_empty_string_is_instant(run_lua):
    started = time.monotonic()
    outcome, _, _ = await run_lua('return #string.rep("", 1e12), #(""):rep(1e12)')
    assert outcome.result == [0, 0]
    assert time.monotonic() - started < 1


async def test_platform_defaults_from_the_environment(monkeypatch):
    monkeypatch.setenv("OKTOSCRIPTS_LIMIT_WALL_SECONDS", "42.5")
    monkeypatch.setenv("OKTOSCRIPTS_LIMIT_INSTRUCTIONS", "1000")
    assert Limits.defaults().wall_seconds == 42.5
    assert Limits.with_overrides({"instructions": 7}).wall_seconds == 42.5
    assert Limits.with_overrides(None).instructions == 1000
    monkeypatch.setenv("OKTOSCRIPTS_LIMIT_MEMORY_BYTES", "lots")
    with pytest.raises(ValueError, match="OKTOSCRIPTS_LIMIT_MEMORY_BYTES"):
        Limits.defaults()


async def test_luajit_continue_idiom_still_compiles(run_lua):
    source = """
    local out = {}
    for i = 1, 4 do
      if i % 2 == 0 then goto continue end
      local x = i * 10
      out[#out + 1] = x
      ::continue::
    end
    return out
    """
    outcome, _, _ = await run_lua(source, runtime="luajit")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [10, 30]


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
@pytest.mark.parametrize("memory", [1, 50_000])
async def test_memory_limit_too_small_for_anything(run_lua, runtime, memory):
    outcome, _, _ = await run_lua(
        "return {1, 2, 3}", runtime=runtime, limits=Limits(memory_bytes=memory)
    )
    await assert_limit(outcome, "memory")


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
@pytest.mark.parametrize(
    "call",
    ['json_decode("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")', "generate_random_string(200)",
     "json_encode({1, 2, {a = 3}})", "tostring(i) .. (print(i) or '')", "test_echo({i, i})"],
)  # fmt: skip
async def test_memory_full_while_bindings_hand_back_values(run_lua, test_bindings, runtime, call):
    # Values from Python reach a heap at its limit: the run fails cleanly (a
    # failed allocation outside Lua's protection would abort the process).
    source = f"local keep, i = {{}}, 0\nwhile true do\n  i = i + 1\n  keep[i] = {call}\nend"
    limits = Limits(memory_bytes=2_000_000, output_bytes=10**8)
    outcome, _, _ = await run_lua(source, runtime=runtime, limits=limits)
    await assert_limit(outcome, "memory")


@pytest.mark.parametrize(
    "source",
    [
        "local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end\n"
        "return fib(60)",
        # Through metamethods: no call, no loop in the script at all.
        "local t = setmetatable({}, {__index = function(t, k)\n"
        "  if k > 60 then return 1 end return t[k + 1] + t[k + 2] end})\nreturn t[1]",
    ],
    ids=["calls", "metamethods"],
)
@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_recursion_without_loops_stops_at_the_instruction_limit(
    run_lua, lua_pool, source, runtime
):
    # Compiled LuaJIT code calls no hook: without a check per call this ran
    # on until the wall clock, on a thread that could only be abandoned.
    stuck_before = lua_pool.stuck
    outcome, _, _ = await run_lua(source, runtime=runtime, limits=FEW_INSTRUCTIONS)
    await assert_limit(outcome, "instructions")
    assert outcome.error.line in (1, 2)
    assert lua_pool.stuck <= stuck_before


async def test_the_default_runtime_builds_many_long_nearly_equal_strings_quickly(run_lua):
    # PUC Lua 5.1 hashes a long string from a sample of its characters: these
    # all collide, and each new one is compared with its neighbours (72 s).
    source = 'local t = {}\nfor i = 1, 100000 do t[i] = string.rep("x", 1024) .. i end\nreturn #t'
    outcome, _, _ = await run_lua(source, limits=Limits(wall_seconds=20))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == 100000
    assert outcome.metrics["runtime"] == "luajit"
