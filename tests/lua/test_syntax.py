"""check_syntax: Lua 5.1's parser, line and column of the error."""

from __future__ import annotations

import pytest

from oktoscripts.lua.syntax import check_syntax


def test_valid_source_has_no_errors():
    assert check_syntax("local x = 1\nreturn x") == []
    assert check_syntax("") == []


@pytest.mark.parametrize(
    ("source", "line", "column", "message"),
    [
        ("x = = 1", 1, 5, "unexpected symbol near '='"),
        ("x = 1 y = = 2", 1, 11, "unexpected symbol near '='"),
        ("local t = {1, 2,, 3}", 1, 17, "unexpected symbol near ','"),
        ("print('a')\n  for i = 1 do end", 2, 13, "',' expected near 'do'"),
        (
            "local a = 1\nif a then\n  print(a)\n",
            4,
            1,
            "'end' expected (to close 'if' at line 2) near '<eof>'",
        ),
        ("a = 1 +", 1, 8, "unexpected symbol near '<eof>'"),
        ("x = 3 ~ 4", 1, 7, "unexpected symbol near '~'"),
        ("goto done", 1, 1, "undefined label 'done'"),  # LuaJIT knows goto
    ],
)
def test_error_line_column_message(source, line, column, message):
    assert check_syntax(source) == [{"line": line, "column": column, "message": message}]


def test_is_lua51_not_later():
    # Integer division and bitwise operators are Lua 5.3: errors here.
    assert check_syntax("return 7 // 2") != []
    assert check_syntax("return 1 & 2") != []


def test_luajit_parser_knows_goto():
    source = "for i = 1, 3 do\n  if i == 2 then goto continue end\n  ::continue::\nend"
    assert check_syntax(source) == []  # LuaJIT, the default runtime
    assert check_syntax(source, runtime="lua51")[0]["line"] == 2


def test_big_script_is_checked_quickly_enough_to_type():
    # The figure itself is measured by bench.engine; this only guards the shape.
    source = "\n".join(f"t[{i}] = {{{i}, '{i}'}}" for i in range(1000)) + "\nx = = 1"
    assert check_syntax(source) == [
        {"line": 1001, "column": 5, "message": "unexpected symbol near '='"}
    ]
