"""Utility bindings: sleep, generate_random_string, json_encode, json_decode, log.

(`print` is part of the engine: it is Lua's own print with the text captured
into the run output.)
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import string
from typing import Any

from oktoscripts.lua.binding import Multi, Param, binding
from oktoscripts.lua.context import MemoryLimitExceeded
from oktoscripts.lua.values import format_number

_ALPHANUMERIC = string.ascii_letters + string.digits
LOG_LEVELS = ("debug", "info", "warn", "error")
# A longer random string is almost certainly a mistake, and would eat memory.
MAX_RANDOM_LENGTH = 1 << 20
# Decoding builds Python objects several times the text's size: bound the
# text (and count what decoding builds against the run's memory limit).
MAX_JSON_TEXT = 32 << 20


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else "a number >= 0"


@binding(
    "sleep",
    params=[Param("seconds", "number", check=_non_negative, doc="fractions allowed")],
    returns="nil",
    doc="Pause the script for that many seconds; other runs go on meanwhile.",
    category="util",
)
async def sleep(ctx: Any, seconds: float) -> None:
    if math.isnan(seconds):
        return None
    # The driver cancels this task on cancellation and at the wall-clock limit.
    await asyncio.sleep(min(seconds, 10 * 365 * 86400))
    return None


def _random_length(value: int) -> str | None:
    return None if value <= MAX_RANDOM_LENGTH else f"an integer <= {MAX_RANDOM_LENGTH}"


@binding(
    "generate_random_string",
    params=[Param("length", "integer", check=_random_length)],
    returns="string",
    doc="A random alphanumeric string of that length from a secure source; '' if length <= 0.",
    category="util",
)
def generate_random_string(ctx: Any, length: int) -> str:
    if length <= 0:
        return ""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


@binding(
    "json_encode",
    params=[Param("value", "any", optional=True)],
    returns="string",
    doc="The value as JSON text (arrays for tables with keys 1..n, objects otherwise).",
    category="util",
)
def json_encode(ctx: Any, value: Any) -> str:
    return json.dumps(_jsonable(value), ensure_ascii=False, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    """Binding arguments are already plain; only callbacks and odd numbers remain."""
    if isinstance(value, dict):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return format_number(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return "<function>"


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    return format_number(key)


@binding(
    "json_decode",
    params=[Param("text", "string")],
    returns="value, err",
    doc="The value of JSON text as Lua values; nil and a message if the text is not JSON.",
    category="util",
)
def json_decode(ctx: Any, text: str) -> Multi:
    if len(text) > MAX_JSON_TEXT:
        return Multi(None, f"JSON text too large (more than {MAX_JSON_TEXT} characters)")
    if _decoded_bytes(text) > ctx.memory_room():
        raise MemoryLimitExceeded("json_decode")
    try:
        return Multi(json.loads(text), None)
    except (ValueError, RecursionError) as exc:
        return Multi(None, f"invalid JSON: {exc}")


# A JSON string, and what decoding costs per value: a Python object while
# the Lua value is built from it, and the Lua value (see lua_size).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_DECODED_VALUE_BYTES = 150


def _decoded_bytes(text: str) -> int:
    """About what decoding `text` builds, counted before building any of it:
    thirty megabytes of "[]," are ten million tables."""
    skeleton = _JSON_STRING.sub("", text)
    values = 1 + sum(skeleton.count(mark) for mark in ",:[{")
    return values * _DECODED_VALUE_BYTES + 2 * (len(text) - len(skeleton))


def _log_level(value: str) -> str | None:
    return None if value in LOG_LEVELS else 'one of "debug", "info", "warn", "error"'


@binding(
    "log",
    params=[
        Param("level", "string", check=_log_level),
        Param("...", "any", label="message", optional=True),
    ],
    returns="nil",
    doc="Write a log line at that level (debug, info, warn, error); tables are shown as JSON.",
    category="util",
    normalize=lambda args: (args[0] if args else None, args[1:]),
)
def log(ctx: Any, level: str, parts: tuple) -> None:
    ctx.output("\t".join(_log_text(p) for p in parts or ()), stream="log", level=level)


def _log_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    return json.dumps(_jsonable(value), ensure_ascii=False)
