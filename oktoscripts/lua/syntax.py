"""Syntax check of Lua 5.1 source, with Lua's own parser, for the editor.

`check_syntax(source)` compiles (never runs) the source in a small runtime
kept per thread and returns the parser's error as {line, column, message}.
Lua 5.1 reports a line and the token it stopped at ("near 'x'"); the column
is where that token is on the line. When the token occurs more than once on
the line, the first occurrence whose prefix of the source gives the same
error is the one (each try is one more compile, still well under a
millisecond for a thousand lines).
"""

from __future__ import annotations

import re
import threading

from oktoscripts.lua.runtime import DEFAULT_RUNTIME, lupa_module

# A source bigger than this is refused before parsing (the editor's own limit is lower).
MAX_SOURCE_BYTES = 4 * 1024 * 1024
_CHUNK = "script"
_MESSAGE = re.compile(r"^" + _CHUNK + r":(\d+): (.*)$", re.S)
_NEAR = re.compile(r" near '(.*)'$", re.S)

_local = threading.local()


def _compiler(runtime_name: str):  # noqa: ANN202 - a lupa function
    compilers = _local.__dict__.setdefault("compilers", {})
    compiler = compilers.get(runtime_name)
    if compiler is None:
        runtime = lupa_module(runtime_name).LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            max_memory=64 * 1024 * 1024,
        )
        compiler = runtime.eval(
            "function(src) local f, err = loadstring(src, '=" + _CHUNK + "') "
            "if f then return nil end return err end"
        )
        compilers[runtime_name] = compiler
    return compiler


def _error_of(source: bytes, runtime: str) -> tuple[int, str] | None:
    try:
        err = _compiler(runtime)(source)
    except lupa_module(runtime).LuaMemoryError:
        return (1, "script too large to check")
    if err is None:
        return None
    text = err.decode("utf-8", errors="replace")
    match = _MESSAGE.match(text)
    if not match:
        return (1, text)
    return int(match.group(1)), match.group(2)


def check_syntax(source: str, runtime: str = DEFAULT_RUNTIME) -> list[dict]:
    """[] if the source compiles, else [{"line", "column", "message"}] (1-based).

    `runtime` "luajit" checks with LuaJIT's parser (which also knows goto)."""
    data = source.encode("utf-8", errors="surrogateescape")
    if len(data) > MAX_SOURCE_BYTES:
        return [{"line": 1, "column": 1, "message": "script too large"}]
    found = _error_of(data, runtime)
    if found is None:
        return []
    line, message = found
    return [{"line": line, "column": _column(data, line, message, runtime), "message": message}]


def _column(data: bytes, line: int, message: str, runtime: str) -> int:
    lines = data.split(b"\n")
    if line < 1 or line > len(lines):
        return 1
    text = lines[line - 1]
    near = _NEAR.search(message)
    if not near:
        return _first_non_blank(text)
    token = near.group(1).encode("utf-8", errors="surrogateescape")
    if token == b"<eof>":
        return len(text.rstrip(b"\r").decode("utf-8", errors="replace")) + 1
    starts = [m.start() for m in re.finditer(re.escape(token), text)]
    if not starts:
        return _first_non_blank(text)
    start = starts[0]
    if len(starts) > 1:
        start = _failing_occurrence(data, lines, line, token, starts, message, runtime)
    return len(text[:start].decode("utf-8", errors="replace")) + 1


def _failing_occurrence(
    data: bytes,
    lines: list[bytes],
    line: int,
    token: bytes,
    starts: list[int],
    message: str,
    runtime: str,
) -> int:
    """The occurrence of `token` at which the parser stops: the first whose
    prefix (up to and including it) already fails with the same message."""
    line_offset = sum(len(x) + 1 for x in lines[: line - 1])
    for start in starts:
        prefix = data[: line_offset + start + len(token)]
        if _error_of(prefix, runtime) == (line, message):
            return start
    return starts[0]


def _first_non_blank(text: bytes) -> int:
    stripped = text.lstrip()
    return len(text[: len(text) - len(stripped)].decode("utf-8", errors="replace")) + 1
