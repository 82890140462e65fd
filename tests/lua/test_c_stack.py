"""Nesting that uses up a Lua thread's C stack: recursive coroutine resumes
and C functions calling script code that calls them again. LuaJIT counts
none of it, and such a script used to kill the worker process with SIGSEGV.
Each reproduction runs in a child process, so that a crash fails the test
instead of killing pytest; the child runs a normal run after them too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = r"""
import asyncio, json, sys
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun
from oktoscripts.lua.threads import LuaThreadPool

async def main():
    pool = LuaThreadPool(workers=2)
    sources, runtime = json.loads(sys.argv[1]), sys.argv[2]
    out = []
    for source in sources + ["return 1 + 1"]:
        run = LuaRun(source, runtime=runtime, executor=pool, limits=Limits(wall_seconds=30))
        outcome = await run.run()
        message = outcome.error.message if outcome.error else None
        out.append([outcome.status, message, outcome.result])
    print(json.dumps(out))

asyncio.run(main())
"""

COROUTINES = [
    "local function f(n) coroutine.wrap(f)(n + 1) end\nreturn pcall(f, 1)",
    "local function f(n)\n  local ok, err = coroutine.resume(coroutine.create(f), n + 1)\n"
    "  if not ok then error(err, 0) end\nend\nreturn pcall(f, 1)",
]
C_CALLBACKS = [
    'local function f(s) return (s:gsub(".", f)) end\nreturn pcall(f, "aa")',
    "local mt = {}\nmt.__index = function(t) return (('x'):gsub('.', t)) end\n"
    "return pcall(function() return (('x'):gsub('.', setmetatable({}, mt))) end)",
    # Bounded by the Lua stack in one coroutine, not across many.
    "local function f()\n  coroutine.wrap(function()\n"
    "    table.sort({3, 2, 1}, function(a, b) f() return a < b end)\n  end)()\nend\n"
    "return pcall(f)",
]
# LuaJIT's string.format calls __tostring (Lua 5.1's refuses a table).
FORMAT = (
    "local function f()\n  return coroutine.wrap(function()\n"
    "    return string.format('%s', setmetatable({}, {__tostring = f}))\n  end)()\nend\n"
    "return pcall(f)"
)
UNCAUGHT = "local function f(n) coroutine.wrap(f)(n + 1) end\nf(1)"


def run_in_child(sources: list[str], runtime: str) -> list:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(sources), runtime],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, f"the process died ({child.returncode}): {child.stderr[-2000:]}"
    return json.loads(child.stdout)


@pytest.mark.parametrize("runtime", ["luajit", "lua51"])
def test_deep_nesting_is_a_lua_error_and_the_process_survives(runtime):
    callbacks = C_CALLBACKS + [FORMAT] if runtime == "luajit" else C_CALLBACKS
    *caught, uncaught, after = run_in_child([*COROUTINES, *callbacks, UNCAUGHT], runtime)
    for (status, _, result), source in zip(caught, COROUTINES + callbacks, strict=True):
        assert status == "succeeded", source
        assert result[0] is False, source
        if runtime == "luajit" and source in COROUTINES:
            assert result[1].endswith("coroutine nesting too deep"), result[1][-200:]
        else:  # Lua 5.1 may stop it first, with its own message
            assert result[1].endswith(("coroutine nesting too deep", "C stack overflow")), result[
                1
            ][-200:]
    status, message, _ = uncaught
    assert status == "failed"
    assert message.startswith("script:1: ")
    assert message.endswith(("coroutine nesting too deep", "C stack overflow"))
    assert after == ["succeeded", None, 2]
