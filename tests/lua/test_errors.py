"""Errors: script name and line, script-only tracebacks, exact argument errors."""

from __future__ import annotations

import re

import pytest


async def test_runtime_error_has_line_and_script_traceback(run_lua):
    source = (
        "local function inner(t)\n"  # 1
        "  return t.x.y\n"  # 2
        "end\n"  # 3
        "local function outer()\n"  # 4
        "  return inner({}) + 1\n"  # 5
        "end\n"  # 6
        "print('start')\n"  # 7
        "outer()\n"  # 8
    )
    outcome, output, _ = await run_lua(source, name="myscript")
    assert outcome.status == "failed"
    error = outcome.error
    assert error.message == "myscript:2: attempt to index field 'x' (a nil value)"
    assert error.line == 2 and error.kind == "error"
    assert error.traceback == [
        {"source": "myscript", "line": 2, "function": "function 'inner'"},
        {"source": "myscript", "line": 5, "function": "function 'outer'"},
        {"source": "myscript", "line": 8, "function": "main chunk"},
    ]
    assert output == ["start"]


async def test_error_with_a_table_value(run_lua):
    outcome, _, _ = await run_lua("error({code = 42})")
    assert outcome.status == "failed"
    assert outcome.error.message == 'error object: {"code": 42}'
    assert outcome.error.line == 1


async def test_error_raised_through_waits_and_coroutines(run_lua):
    source = (
        "sleep(0)\nlocal f = coroutine.wrap(function()\n  sleep(0)\n  error('inside')\nend)\nf()"
    )
    outcome, _, _ = await run_lua(source)
    assert outcome.error.message == "script:6: script:4: inside"
    assert outcome.error.line == 6


async def test_syntax_error_of_the_script(run_lua):
    outcome, _, _ = await run_lua("local x = 1\nif x then\n  print(x)\n", name="broken")
    assert outcome.status == "failed"
    assert outcome.error.kind == "syntax"
    assert outcome.error.line == 4
    assert outcome.error.message.startswith("broken:4: 'end' expected (to close 'if' at line 2)")


async def test_debug_traceback_shows_script_frames_only(run_lua):
    outcome, _, _ = await run_lua(
        "local function f()\n  local t = debug.traceback('here')\n  return t\nend\n"
        "local ok, t = pcall(f)\nreturn ok, t"
    )
    ok, text = outcome.result
    assert text.splitlines() == [
        "here",
        "stack traceback:",
        "\tscript:2: in function <script:1>",
        "\tscript:5: in main chunk",
    ]
    assert "(engine)" not in text and "[C]" not in text


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("sleep()", "sleep: argument #1 (seconds) must be a number, got nil"),
        ("sleep('x')", 'sleep: argument #1 (seconds) must be a number, got "x"'),
        ("sleep(-1)", "sleep: argument #1 (seconds) must be a number >= 0, got -1"),
        ("sleep({})", "sleep: argument #1 (seconds) must be a number, got a table"),
        ("sleep(print)", "sleep: argument #1 (seconds) must be a number, got a function"),
        ("sleep(true)", "sleep: argument #1 (seconds) must be a number, got true"),
        (
            "generate_random_string(2.5)",
            "generate_random_string: argument #1 (length) must be an integer, got 2.5",
        ),
        ("json_decode(42)", "json_decode: argument #1 (text) must be a string, got 42"),
        (
            "log('loud', 'x')",
            'log: argument #1 (level) must be one of "debug", "info", "warn", "error", got "loud"',
        ),
    ],
)
async def test_argument_errors_are_exact(run_lua, call, message):
    outcome, _, _ = await run_lua(f"local a = 1\n{call}")
    assert outcome.status == "failed"
    assert outcome.error.message == f"script:2: {message}"
    assert outcome.error.line == 2


async def test_argument_error_can_be_caught(run_lua):
    outcome, _, _ = await run_lua("return pcall(sleep, 'soon')")
    assert outcome.result == [False, 'sleep: argument #1 (seconds) must be a number, got "soon"']


async def test_waiting_where_lua51_cannot_yield_is_explained(run_lua):
    outcome, _, _ = await run_lua(
        "local t = {3, 1, 2}\ntable.sort(t, function(a, b)\n  sleep(0)\n  return a < b\nend)",
        runtime="lua51",
    )
    assert outcome.status == "failed"
    assert outcome.error.line == 3
    assert outcome.error.message.startswith(
        "script:3: attempt to yield across metamethod/C-call boundary (a function that waits"
    )


async def test_luajit_can_wait_inside_table_sort(run_lua):
    outcome, _, _ = await run_lua(
        "local t = {3, 1, 2}\ntable.sort(t, function(a, b) sleep(0) return a < b end)\nreturn t",
        runtime="luajit",
    )
    # The engine's table.sort is Lua code under LuaJIT: nothing of C in between.
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [1, 2, 3]


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
@pytest.mark.parametrize(
    "call",
    ['return send_cwmp_message("", "<x/>", 0)', 'local r = send_cwmp_message("", "<x/>", 0)'],
    ids=["tail call", "call"],
)
async def test_api_errors_caught_by_pcall_keep_their_line(run_lua, runtime, call):
    source = f"local ok, err = pcall(function()\n  {call}\nend)\nreturn err"
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded"
    # A tail call leaves no frame of its own: the line is that of the pcall.
    line = 1 if call.startswith("return") else 2
    assert outcome.result == (
        f'script:{line}: send_cwmp_message: argument #1 (serial) must be a non-empty string, got ""'
    )
    uncaught_source = f"local ok, err = (function()\n  {call}\nend)()\nreturn err"
    uncaught, _, _ = await run_lua(uncaught_source, runtime=runtime)
    assert re.match(r"script:\d: send_cwmp_message: argument #1 \(serial\)", uncaught.error.message)
