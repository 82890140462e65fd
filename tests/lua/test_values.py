"""Returned values, print, and binding results across the Lua/Python boundary."""

from __future__ import annotations

import json

import pytest


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


async def test_huge_values_are_bounded(run_lua, monkeypatch):
    from oktoscripts.lua import values

    monkeypatch.setattr(values, "MAX_NODES", 100)
    outcome, _, _ = await run_lua("local t = {} for i = 1, 500 do t[i] = i end return t")
    assert outcome.result[:99] == list(range(1, 100))
    assert outcome.result[-1] == "<truncated>"
    outcome, _, _ = await run_lua("local t = {} for i = 1, 500 do t[i] = i end\njson_encode(t)")
    assert outcome.status == "failed"
    assert outcome.error.message == "script:2: json_encode: table too large (more than 100 values)"
