"""Returned values, print, and binding results across the Lua/Python boundary."""

from __future__ import annotations

import json
import time

import pytest

from oktoscripts.lua.limits import Limits


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{1, 2, 3}", [1, 2, 3]),
        ("{}", []),
        ("{a = 1, b = {c = 'd'}}", {"a": 1, "b": {"c": "d"}}),
        ("{1, 2, x = 3}", {"1": 1, "2": 2, "x": 3}),
        ("{[1] = 'a', [3] = 'c'}", {"1": "a", "3": "c"}),
        ("{[1.5] = 'x', [true] = 'y'}", {"1.5": "x", "true": "y"}),
        ("{{1, {2, {3}}}, {k = {}}}", [[1, [2, [3]]], {"k": []}]),
        ("1.5", 1.5),
        ("2^53", 2**53),
        ("10 / 2", 5),
        ("0/0", "nan"),
        ("1/0", "inf"),
        ("-1/0", "-inf"),
        ("{math.huge, -math.huge}", ["inf", "-inf"]),
        ("print", "<function>"),
        (
            "{f = function() end, co = STARTED}",
            {"f": "<function>", "co": "<thread>"},
        ),
        ("'caf\\195\\169'", "café"),
        ("'bad \\255 byte'", "bad \ufffd byte"),
        ("nil", None),
        ("true", True),
    ],
)
async def test_returned_value_as_json(run_lua, expression, expected):
    started = "local STARTED = coroutine.create(coroutine.yield) coroutine.resume(STARTED)\n"
    outcome, _, _ = await run_lua(f"{started}return {expression}")
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == expected
    json.dumps(outcome.result, allow_nan=False)


async def test_several_returned_values_are_a_list(run_lua):
    outcome, _, _ = await run_lua("return 1, nil, 'x'")
    assert outcome.result == [1, None, "x"]


async def test_cycles_are_reported_not_followed(run_lua):
    outcome, _, _ = await run_lua(
        "local a = {name = 'a'} local b = {a = a} a.b = b a.me = a "
        "local shared = {1} return {a = a, s1 = shared, s2 = shared}"
    )
    assert outcome.result == {
        "a": {"name": "a", "b": {"a": "<cycle>"}, "me": "<cycle>"},
        "s1": [1],
        "s2": [1],  # the same table twice is no cycle
    }


async def test_very_deep_nesting_is_bounded(run_lua):
    outcome, _, _ = await run_lua(
        "local t = {} local top = t for i = 1, 1000 do t[1] = {} t = t[1] end return top"
    )
    assert outcome.status == "succeeded"
    depth, node = 0, outcome.result
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert node == "<too deep>" and depth == 100


async def test_print_is_like_lua_print(run_lua):
    outcome, output, _ = await run_lua(
        "print('a', 1, 2.5, nil, true, 1e100)\nprint()\n"
        "print(setmetatable({}, {__tostring = function() return 'T!' end}))\nprint(1/0, -1/0)"
    )
    assert outcome.status == "succeeded"
    assert output == ["a\t1\t2.5\tnil\ttrue\t1e+100", "", "T!", "inf\t-inf"]


async def test_binding_results_become_lua_tables(run_lua):
    outcome, _, _ = await run_lua(
        """
        local v, err = json_decode(
          '{"list": [10, 20, {"deep": true}], "obj": {"k": "v"}, "n": null}')
        return #v.list, v.list[3].deep, v.obj.k, v.n, err, type(v), json_decode('7')
        """
    )
    assert outcome.result == [3, True, "v", None, None, "table", 7, None]


async def test_json_encode_and_decode(run_lua):
    outcome, _, _ = await run_lua(
        """
        local bad, err = json_decode('{"a": ')
        return json_encode({1, 2, {a = "x"}}), json_encode({}), json_encode("s"),
               json_encode(0/0), bad, err
        """
    )
    encoded, empty, string, nan, bad, err = outcome.result
    assert json.loads(encoded) == [1, 2, {"a": "x"}]
    assert (empty, string, nan, bad) == ("[]", '"s"', '"nan"', None)
    assert err.startswith("invalid JSON: ")


async def test_json_encode_of_a_cycle_is_an_argument_error(run_lua):
    outcome, _, _ = await run_lua("local t = {} t.t = t\nlocal s = json_encode(t)")
    assert outcome.status == "failed"
    assert outcome.error.message == "script:2: json_encode: table contains itself"


async def test_args_reach_the_chunk(run_lua):
    outcome, _, _ = await run_lua(
        "local a = ...\nreturn a.serial, args.count, args.list[2]",
        args={"serial": "ABC", "count": 3, "list": ["x", "y"]},
    )
    assert outcome.result == ["ABC", 3, "y"]


async def test_generate_random_string(run_lua):
    outcome, _, _ = await run_lua(
        "return generate_random_string(32), generate_random_string(0), generate_random_string(-5),"
        " generate_random_string(32)"
    )
    a, empty, negative, b = outcome.result
    assert len(a) == 32 and a.isalnum() and a.isascii() and a != b
    assert empty == "" and negative == ""


async def test_log_levels(run_lua):
    outcome, _, lua = await run_lua("log('info', 'hello', 1, {a = 1})\nlog('error', 'bad')")
    assert outcome.status == "succeeded", outcome.error
    lines = [(x.stream, x.level, x.text) for x in lua.output_lines]
    assert lines == [("log", "info", 'hello\t1\t{"a": 1}'), ("log", "error", "bad")]


async def test_huge_arguments_are_refused(run_lua, monkeypatch):
    from oktoscripts.lua import values

    monkeypatch.setattr(values, "MAX_NODES", 100)
    outcome, _, _ = await run_lua("local t = {} for i = 1, 500 do t[i] = i end\njson_encode(t)")
    assert outcome.status == "failed"
    assert outcome.error.message == "script:2: json_encode: table too large (more than 100 values)"


RESULT_LIMIT = "result limit of 16 MiB exceeded (the value as JSON)"


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
@pytest.mark.parametrize(
    "source",
    [
        # 39 MB of Lua heap used to become 500 MB of JSON (and 1.6 GB of worker memory).
        'local s = string.rep("x", 20e6) local t = {} for i = 1, 25 do t[i] = s end\nreturn t',
        # Used to come back as a 113 MB result of 7,000,001 "<truncated>" entries.
        "local t = {} for i = 1, 8e6 do t[i] = i end\nreturn t",
        "local s = string.rep('x', 1e6) local t = {} for i = 1, 20 do t['k' .. i] = s end\n"
        "return 1, t",
    ],
    ids=["one string many times", "8M values", "object"],
)
async def test_a_result_over_the_result_limit_fails_the_run(run_lua, runtime, source):
    # (Memory enough for the Python objects of the first 16 MiB of JSON.)
    limits = Limits(wall_seconds=60, memory_bytes=1 << 30)
    outcome, _, _ = await run_lua(source, runtime=runtime, limits=limits)
    assert outcome.status == "limit_exceeded"
    assert outcome.error.limit == "result_bytes"
    assert outcome.error.message == f"script: {RESULT_LIMIT}"
    assert outcome.result is None


async def test_the_result_limit_is_a_platform_setting(run_lua, monkeypatch):
    monkeypatch.setenv("OKTOSCRIPTS_LIMIT_RESULT_BYTES", "1000")
    outcome, _, _ = await run_lua("return string.rep('x', 900)")
    assert outcome.status == "succeeded" and len(outcome.result) == 900
    outcome, _, _ = await run_lua("return {string.rep('x', 600), string.rep('y', 600)}")
    expected = "script: result limit of 1000 bytes exceeded (the value as JSON)"
    assert outcome.error.message == expected


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_what_a_result_builds_in_python_counts_against_the_memory_limit(run_lua, runtime):
    # 300,000 small tables: 17 MB of Lua heap, many times that as Python objects.
    source = "local t = {} for i = 1, 3e5 do t[i] = {} end\nreturn t"
    outcome, _, _ = await run_lua(source, runtime=runtime, limits=Limits(memory_bytes=40 << 20))
    assert outcome.status == "limit_exceeded"
    assert outcome.error.limit == "memory"


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
@pytest.mark.parametrize(
    "source",
    [
        # 30 MB of "[]," used to take 3.3 GB and 57 s with a 128 MiB limit.
        'local text = "[" .. string.rep("[],", 1e7) .. "[]]"\nlocal v = json_decode(text)',
        "local t = {} for i = 1, 3e5 do t[i] = {} end\nlocal text = json_encode(t)",
    ],
    ids=["json_decode", "json_encode"],
)
async def test_json_conversions_count_against_the_memory_limit(run_lua, runtime, source):
    limits = Limits(memory_bytes=128 << 20, wall_seconds=60)
    started = time.monotonic()
    outcome, _, _ = await run_lua(source.replace("3e5", "1.2e6"), runtime=runtime, limits=limits)
    assert outcome.status == "limit_exceeded"
    assert outcome.error.limit == "memory"
    assert outcome.error.line == 2
    assert time.monotonic() - started < 15  # refused before it is built, not after
