"""Converting values between Lua (lupa objects) and Python / JSON.

Lua to Python (binding arguments, returned values, print of results):
- strings -> str (invalid UTF-8 kept through surrogate escapes for arguments,
  replaced by U+FFFD for JSON results);
- numbers -> int when integral (and within 2^53), else float;
- a table whose keys are exactly 1..n -> list; the empty table -> [] (as most
  Lua JSON libraries do); any other table -> dict with string keys (numbers
  formatted like Lua's tostring);
- NaN and infinities -> the strings "nan", "inf", "-inf" (JSON has no such numbers);
- functions -> "<function>" in JSON (LuaCallback handles for binding
  arguments), coroutines "<thread>", userdata "<userdata>";
- a table met again inside itself -> "<cycle>"; nesting deeper than
  MAX_DEPTH -> "<too deep>".

Python to Lua (binding results): dict -> table, list/tuple -> 1-based array,
None -> nil, str -> Lua string, bool/int/float as is; anything else becomes
its str(), so no Python object ever reaches Lua.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
# Values (table entries) converted for one result or one binding call: beyond
# this a result is cut ("<truncated>") and an argument refused, so a script
# cannot make the Python side build objects far bigger than its Lua memory.
MAX_NODES = 1_000_000
_MAX_EXACT = 2**53


class LuaCallback:
    """An opaque handle on a Lua function passed to a binding (e.g. a listener).

    Bindings hand it to ctx.add_listener; the driver calls the function as a
    fresh Lua coroutine. It cannot be called directly from Python.
    """

    __slots__ = ("_number", "_run_token")

    def __init__(self, number: int, run_token: object) -> None:
        # The function itself stays in the run's Lua state (see keep in
        # sandbox.lua): a plain number is safe to hold, copy and drop on any
        # thread, at any time, even after the runtime is gone.
        self._number = number
        self._run_token = run_token

    def __repr__(self) -> str:
        return "<Lua function>"


def format_number(value: float) -> str:
    """A number as Lua 5.1's tostring writes it (%.14g; nan, inf, -inf)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.14g}"


def _number(value: float) -> int | float:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_EXACT:
        return int(value)
    return value


def plain_to_python(value: Any) -> Any:
    """A binding argument that is not a table or function, as Python (the
    common case, without a Converter)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    if isinstance(value, float):
        return _number(value)
    return value


def plain_to_json(value: Any) -> Any:
    """A returned value that is not a table or function, JSON-ready."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float):
        return _number(value) if math.isfinite(value) else format_number(value)
    return value


# What lupa gives for Lua's nil, booleans, numbers and strings.
PLAIN_TYPES = (type(None), bool, int, float, bytes)


class Converter:
    """Walks Lua values of one runtime into Python values.

    `lua_type` is Lua's own type function (lupa's view of a coroutine that
    has not started is a function); `table_id` is a Lua function
    giving each table a stable number (lupa wrappers have no identity), used
    to detect cycles.
    """

    def __init__(self, lua_type: Callable[[Any], bytes], table_id: Callable[[Any], int]):
        self._lua_type = lambda value: lua_type(value).decode()
        self._table_id = table_id

    # -- JSON-ready (results, json_encode, output) -------------------------------

    def to_json(self, value: Any) -> Any:
        self._budget = MAX_NODES
        return self._json(value, set(), 0)

    def _json(self, value: Any, seen: set[int], depth: int) -> Any:
        self._budget -= 1
        if self._budget < 0:
            return "<truncated>"
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        if isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                return format_number(value)
            return _number(value)
        kind = self._lua_type(value)
        if kind != "table":
            return f"<{kind}>"
        if depth >= MAX_DEPTH:
            return "<too deep>"
        ident = self._table_id(value)
        if ident in seen:
            return "<cycle>"
        seen.add(ident)
        try:
            items = list(value.items())
            if _is_array(items):
                items.sort(key=lambda kv: kv[0])
                return [self._json(v, seen, depth + 1) for _, v in items]
            return {_json_key(k): self._json(v, seen, depth + 1) for k, v in items}
        finally:
            seen.discard(ident)

    # -- binding arguments -------------------------------------------------------

    def to_python(self, value: Any, wrap_function: Callable[[Any], Any]) -> Any:
        self._budget = MAX_NODES
        return self._arg(value, wrap_function, set(), 0)

    def _arg(self, value: Any, wrap: Callable[[Any], Any], seen: set[int], depth: int) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise ValueError(f"table too large (more than {MAX_NODES} values)")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="surrogateescape")
        if isinstance(value, int | float):
            return _number(value)
        kind = self._lua_type(value)
        if kind == "function":
            return wrap(value)
        if kind != "table":
            return None
        if depth >= MAX_DEPTH:
            raise ValueError("table nested too deeply")
        ident = self._table_id(value)
        if ident in seen:
            raise ValueError("table contains itself")
        seen.add(ident)
        try:
            items = list(value.items())
            if _is_array(items):
                items.sort(key=lambda kv: kv[0])
                return [self._arg(v, wrap, seen, depth + 1) for _, v in items]
            return {
                self._arg(k, wrap, seen, depth + 1): self._arg(v, wrap, seen, depth + 1)
                for k, v in items
                if isinstance(k, bytes | int | float | bool)
            }
        finally:
            seen.discard(ident)


def _is_array(items: list[tuple[Any, Any]]) -> bool:
    """Keys exactly 1..n (n may be 0: the empty table is an array)."""
    n = len(items)
    for key, _ in items:
        if isinstance(key, bool) or not isinstance(key, int | float):
            return False
        if key != int(key) or not 1 <= key <= n:
            return False
    return True  # n distinct keys, all integral and within 1..n


def _json_key(key: Any) -> str:
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float):
        return format_number(key)
    return "<table>" if key is not None else "nil"


# ---------------------------------------------------------------- Python -> Lua


# Exact types passed to Lua as they are.
_AS_IS = frozenset({type(None), bool, int, float, bytes})


def to_lua_plain(value: Any, depth: int = 0) -> Any:
    """A Python value made of only what lupa turns into plain Lua values:
    bytes, numbers, booleans, None, dicts and lists (to feed table_from).

    Plain dicts and lists of strings and numbers (JSON, device tables) take a
    path that looks at exact types and converts scalars in place: a listing
    of 10,000 devices is a million values. Everything else goes the general way."""
    kind = type(value)
    if kind is str:
        return value.encode("utf-8", errors="surrogateescape")
    if kind in _AS_IS:
        return value
    if kind is dict and depth < MAX_DEPTH:
        out = {}
        # Scalars inline, not through a call each: this loop is the hot path.
        for key, item in value.items():
            if key is None:
                continue
            kind = type(key)
            if kind is str:
                key = key.encode("utf-8", errors="surrogateescape")
            elif kind not in _AS_IS:
                key = to_lua_plain(key, depth + 1)
            kind = type(item)
            if kind is str:
                item = item.encode("utf-8", errors="surrogateescape")
            elif kind not in _AS_IS:
                item = to_lua_plain(item, depth + 1)
            out[key] = item
        return out
    if kind is list and depth < MAX_DEPTH:
        return [
            item.encode("utf-8", errors="surrogateescape")
            if type(item) is str
            else item
            if type(item) in _AS_IS
            else to_lua_plain(item, depth + 1)
            for item in value
        ]
    return _general_plain(value, depth)


def _general_plain(value: Any, depth: int) -> Any:
    """to_lua_plain for subclasses, tuples, sets, other objects, and depth."""
    if value is None or isinstance(value, bool | int | float | bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", errors="surrogateescape")
    if depth >= MAX_DEPTH:
        return b"<too deep>"
    if isinstance(value, dict):
        return {
            to_lua_plain(k, depth + 1): to_lua_plain(v, depth + 1)
            for k, v in value.items()
            if k is not None
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [to_lua_plain(v, depth + 1) for v in value]
    return str(value).encode("utf-8", errors="replace")


def to_lua(runtime: Any, value: Any) -> Any:
    """A value ready to hand to Lua: tables are built as real Lua tables."""
    plain = to_lua_plain(value)
    if isinstance(plain, dict | list):
        return runtime.table_from(plain, recursive=True)
    return plain
