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

What a conversion builds on the Python side counts against the run's memory
limit (with what the Lua heap holds), and a returned value also against the
result limit (its size as JSON): past either the conversion stops at once
with OverBudget, so that a small Lua heap cannot become a huge Python one
(one 20 MB string returned 25 times is 500 MB of JSON).

Python to Lua (binding results): dict -> table, list/tuple -> 1-based array,
None -> nil, str -> Lua string, bool/int/float as is; anything else becomes
its str(), so no Python object ever reaches Lua.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
# Values (table entries) in the arguments of one binding call: beyond this
# they are refused.
MAX_NODES = 1_000_000
_MAX_EXACT = 2**53

# What a Python value costs, roughly (CPython, 64 bits): an object's header
# and a container's slot; a dict entry with its key.
_SCALAR_BYTES = 32
_STR_BYTES = 49
_CONTAINER_BYTES = 64
_ITEM_BYTES = 16
_ENTRY_BYTES = 100


class OverBudget(Exception):
    """A conversion would go over the run's memory limit ("memory_bytes") or
    the result limit ("result_bytes")."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class Budget:
    """Bytes a conversion may still build: `memory` of Python objects and,
    for a result, `json` of JSON text."""

    __slots__ = ("memory", "json")

    def __init__(self, memory: int, json: int | None = None) -> None:
        self.memory = memory
        self.json = json

    def spend(self, memory: int, json: int = 0) -> None:
        self.memory -= memory
        if self.memory < 0:
            raise OverBudget("memory_bytes")
        if self.json is not None:
            self.json -= json
            if self.json < 0:
                raise OverBudget("result_bytes")


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

    # -- JSON-ready (results, error values) ---------------------------------------

    def to_json(self, value: Any, budget: Budget) -> Any:
        return self._json(value, set(), 0, budget)

    def _json(self, value: Any, seen: set[int], depth: int, budget: Budget) -> Any:
        if value is None or isinstance(value, bool):
            budget.spend(0, 5)
            return value
        if isinstance(value, bytes):
            # Counted before it is decoded: that is where the memory goes.
            budget.spend(_STR_BYTES + len(value), len(value) + 3)
            return value.decode("utf-8", errors="replace")
        if isinstance(value, int | float):
            budget.spend(_SCALAR_BYTES, 24)
            if isinstance(value, float) and not math.isfinite(value):
                return format_number(value)
            return _number(value)
        kind = self._lua_type(value)
        if kind != "table":
            budget.spend(_STR_BYTES, 12)
            return f"<{kind}>"
        if depth >= MAX_DEPTH:
            budget.spend(_STR_BYTES, 12)
            return "<too deep>"
        ident = self._table_id(value)
        if ident in seen:
            budget.spend(_STR_BYTES, 9)
            return "<cycle>"
        seen.add(ident)
        try:
            budget.spend(_CONTAINER_BYTES, 2)
            items = []
            for item in value.items():  # one at a time: a huge table stops early
                budget.spend(_ENTRY_BYTES, 2)
                items.append(item)
            if _is_array(items):
                items.sort(key=lambda kv: kv[0])
                return [self._json(v, seen, depth + 1, budget) for _, v in items]
            converted = {}
            for k, v in items:
                key = _json_key(k)
                budget.spend(_STR_BYTES + len(key), len(key) + 3)
                converted[key] = self._json(v, seen, depth + 1, budget)
            return converted
        finally:
            seen.discard(ident)

    # -- binding arguments -------------------------------------------------------

    def to_python(self, value: Any, wrap_function: Callable[[Any], Any], budget: Budget) -> Any:
        self._nodes = MAX_NODES
        return self._arg(value, wrap_function, set(), 0, budget)

    def _arg(
        self, value: Any, wrap: Callable[[Any], Any], seen: set[int], depth: int, budget: Budget
    ) -> Any:
        self._nodes -= 1
        if self._nodes < 0:
            raise ValueError(f"table too large (more than {MAX_NODES} values)")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, bytes):
            budget.spend(_STR_BYTES + len(value))
            return value.decode("utf-8", errors="surrogateescape")
        if isinstance(value, int | float):
            budget.spend(_SCALAR_BYTES)
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
            budget.spend(_CONTAINER_BYTES)
            items = []
            for item in value.items():
                budget.spend(_ENTRY_BYTES)
                items.append(item)
            if _is_array(items):
                items.sort(key=lambda kv: kv[0])
                return [self._arg(v, wrap, seen, depth + 1, budget) for _, v in items]
            return {
                self._arg(k, wrap, seen, depth + 1, budget): self._arg(
                    v, wrap, seen, depth + 1, budget
                )
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


# What a value costs in a Lua heap, roughly: a table's header and a slot
# per entry (hash entries are larger), a string's header.
_LUA_TABLE_BYTES = 64
_LUA_SLOT_BYTES = 40
_LUA_STRING_BYTES = 32


def lua_size(value: Any, room: int) -> int:
    """About how many bytes `value` (from Python) takes once made of Lua
    values; the count stops once past `room`, so that the walk of a huge
    value is cut short too."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes:
            size += _LUA_STRING_BYTES + len(item)
        elif kind is dict:
            size += _LUA_TABLE_BYTES + _LUA_SLOT_BYTES * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            size += _LUA_TABLE_BYTES + _LUA_SLOT_BYTES * len(item)
            stack.extend(item)
        elif item is not None and not isinstance(item, bool | int | float):
            size += _LUA_STRING_BYTES + 16
        if size > room:
            break
    return size


def to_lua(runtime: Any, value: Any) -> Any:
    """A value ready to hand to Lua: tables are built as real Lua tables."""
    plain = to_lua_plain(value)
    if isinstance(plain, dict | list):
        return runtime.table_from(plain, recursive=True)
    return plain
