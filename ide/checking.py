"""The check behind the editor's live markers: the engine's Lua 5.1 syntax
check first, then, for a script that compiles, the lint."""

from __future__ import annotations

import re
from typing import Any

from oktoscripts.lua.lint import lint
from oktoscripts.lua.syntax import check_syntax

_NEAR = re.compile(r"near '(.+)'$")


def check_source(source: str) -> list[dict[str, Any]]:
    """Problems as ``{"line", "column", "end_column", "message", "severity", "code"}``."""
    problems = []
    for error in check_syntax(source):
        column = max(0, (error.get("column") or 1) - 1)
        near = _NEAR.search(error["message"])
        token = near.group(1) if near and near.group(1) != "<eof>" else ""
        problems.append({
            "line": error["line"] or 1,
            "column": column,
            # the token Lua names ("near 'x'"), else the whole line (end 0)
            "end_column": column + len(token) if token else 0,
            "message": error["message"],
            "severity": "error",
            "code": "syntax",
        })
    if problems:
        return problems
    return lint(source)
