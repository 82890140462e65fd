"""The editor's lint: what it reports on real script mistakes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from oktoscripts.lua.lint import lint


@dataclass
class P:
    name: str
    optional: bool = False


@dataclass
class B:
    name: str
    params: tuple
    normalize: object = None


API = [
    B("get_device", (P("serial"),)),
    B("sleep", (P("seconds"),)),
    B("send_cwmp_message", (P("serial"), P("xml"), P("type"))),
    B("listen_to_new_device", (P("callback"),), normalize=lambda a: a),
]


def messages(source: str) -> list[str]:
    return [f"{p['line']}:{p['message']}" for p in lint(source, API)]


def test_typo_of_an_api_name_is_reported_with_a_suggestion():
    assert messages('local d = get_devce("x")\nreturn d') == [
        "1:unknown global 'get_devce' (did you mean 'get_device'?)"
    ]


def test_wrong_argument_counts_to_api_functions():
    src = 'send_cwmp_message("a", "b")\nget_device("a", "b")\nsleep()\n'
    assert messages(src) == [
        "1:send_cwmp_message needs 3 arguments, got 2",
        "2:get_device takes at most 1 argument, got 2",
        "3:sleep needs 1 argument, got 0",
    ]


def test_open_ended_calls_and_alternative_forms_are_not_flagged():
    src = (
        'local t = {"a", "b"}\nsend_cwmp_message("s", unpack(t))\n'
        'listen_to_new_device("*", "*", function(d) print(d) end)\n'
    )
    assert messages(src) == []


def test_names_the_sandbox_removes():
    src = 'local f = io.open("x")\nos.execute("ls")\nrequire("socket")\nprint(f, os.time())'
    assert messages(src) == [
        "1:'io' is not available in the sandbox",
        "2:'os.execute' is not available in the sandbox",
        "3:'require' is not available in the sandbox",
    ]


def test_unused_locals_but_not_underscore_or_used_ones():
    src = (
        "local unused = 1\nlocal _ignored = 2\nlocal used = 3\nprint(used)\n"
        "local function helper() end\nfor i, v in ipairs({}) do print(v) end\n"
    )
    assert messages(src) == ["1:unused local 'unused'", "5:unused local function 'helper'"]


def test_scopes_globals_defined_by_the_script_and_upvalues():
    src = (
        "function report(x) return x end\ncounter = 0\n"
        "local function inc() counter = counter + 1 return report(counter) end\n"
        "do local inner = 1 print(inner) end\nprint(inner)\nreturn inc()\n"
    )
    assert messages(src) == ["5:unknown global 'inner'"]


def test_standard_library_field_typo():
    assert messages('print(string.fromat("%d", 1))') == [
        "1:unknown field 'string.fromat' (did you mean 'string.format'?)"
    ]


@pytest.mark.parametrize(
    "source",
    [
        "local s = [==[ long ]] string ]==] print(s)",
        '-- comment\n--[[ block\ncomment ]] print(\'a\' .. "b\\"")',
        "local t = {1, 2; 3, x = 4, ['y'] = 5} print(#t, t.x, t['y'])",
        "local o = {} function o:m(a) return self, a end print(o:m(1))",
        "local function f(...) return select('#', ...) end print(f(1, 2))",
        "repeat local z = 1 until z == 1",
        "while false do break end if true then elseif false then else end",
        "print(not true and -1 or #'abc', 2 ^ 3 % 2, 1 <= 2, 'a' ~= 'b')",
    ],
)
def test_valid_lua_gives_no_problem(source):
    assert messages(source) == []


def test_unparseable_input_gives_no_lint_and_no_exception():
    assert lint("local = = (", API) == []
    assert lint("x = [[ unterminated", API) == []
