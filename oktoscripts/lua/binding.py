"""The binding registry: every function a Lua script can call, declared once.

The engine owns the machinery (Binding, Param, the ``binding`` decorator, the
argument checks) and the registry of declared bindings; the functions
themselves live in ``oktoscripts.bindings``, one module per domain, and
register here when that package is imported. The engine never imports them:
whoever runs or checks scripts (the worker, ``runscript``, the IDE) imports
``oktoscripts.bindings`` first.

A declaration gives the name, typed parameters, return shape and a one-line
doc. The engine checks arguments from it (message format in docs/lua-api.md,
"Errors"), and the editor's completion, lint and API reference read it too.

    @binding("sleep", params=[Param("seconds", "number")], returns="nil",
             doc="Pause the script.", category="util")
    async def sleep(ctx, seconds): ...

A plain ``def`` runs in the Lua thread and must not block; an ``async def``
makes the calling Lua coroutine wait while the driver awaits it on the
worker's asyncio loop.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from oktoscripts.lua.values import LuaCallback, format_number

log = logging.getLogger(__name__)

PARAM_TYPES = ("string", "number", "integer", "boolean", "table", "function", "any")
CATEGORIES = ("devices", "cwmp", "usp", "events", "util")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    label: str | None = None
    optional: bool = False
    doc: str = ""
    # Extra check on the converted value: None if fine, else the expectation
    # text for the message ("an integer 0-4").
    check: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True)
class Field:
    """A key of the table a binding returns (of each element, when it returns an
    array of tables): the editor completes ``d.`` with these, the reference lists them."""

    name: str
    type: str
    doc: str = ""


@dataclass(frozen=True)
class Binding:
    name: str
    params: tuple[Param, ...]
    returns: str
    doc: str
    func: Callable
    category: str
    normalize: Callable[[tuple], tuple] | None = None
    # The Django permission the run's principal must hold (oktoscripts/permissions.py).
    permission: str | None = None
    fields: tuple[Field, ...] = ()

    @cached_property
    def waits(self) -> bool:
        """True for bindings whose call suspends the Lua coroutine (async def)."""
        return inspect.iscoroutinefunction(self.func)

    @cached_property
    def signature(self) -> str:
        """`send_cwmp_message(serial, xml_payload, message_type)` for completion."""
        names = [f"{p.name}?" if p.optional else p.name for p in self.params]
        return f"{self.name}({', '.join(names)})"


class Multi(tuple):
    """Returned by a binding to give several Lua return values: Multi((value, err))."""

    def __new__(cls, *values: Any) -> Multi:
        if len(values) == 1 and isinstance(values[0], tuple | list):
            values = tuple(values[0])
        return super().__new__(cls, values)


class ArgumentError(Exception):
    """A wrong argument; its text is raised as a Lua error at the caller's line."""


class Refused(ArgumentError):
    """The run's principal may not do this; raised as a Lua error like a wrong argument."""


def _refusal(ctx: Any, name: str, permission: str) -> Refused | None:
    principal = getattr(ctx, "principal", None)
    if principal is None:
        why = f"this run acts for no one, and needs the permission '{permission}'"
    else:
        why = principal.binding_refusal(permission)
    if why is None:
        return None
    # Also in the platform's log: someone tried what their role does not allow.
    log.warning(
        "run %s (%s): %s refused: %s",
        getattr(ctx, "run_id", "?"),
        getattr(ctx, "script_name", "?"),
        name,
        why,
    )
    return Refused(f"{name}: refused: {why}")


def _guarded(name: str, permission: str, func: Callable) -> Callable:
    """``func`` behind the principal's permission check (in the Lua thread for a
    plain binding, off the event loop for one that waits: it reads the database)."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def guarded_async(ctx: Any, *args: Any) -> Any:
            refused = await asyncio.to_thread(_refusal, ctx, name, permission)
            if refused is not None:
                raise refused
            return await func(ctx, *args)

        return guarded_async

    @functools.wraps(func)
    def guarded(ctx: Any, *args: Any) -> Any:
        refused = _refusal(ctx, name, permission)
        if refused is not None:
            raise refused
        return func(ctx, *args)

    return guarded


class _Registry(dict):
    """name -> Binding; forgets the sorted view (binding_table) on any change,
    including tests that add and pop bindings directly."""

    table: tuple[tuple[Binding, ...], tuple[bytes, ...]] | None = None

    def __setitem__(self, key: str, value: Binding) -> None:
        self.table = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.table = None
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self.table = None
        return super().pop(*args)

    def clear(self) -> None:
        self.table = None
        super().clear()


_REGISTRY: _Registry = _Registry()


def binding(
    name: str,
    *,
    params: Sequence[Param],
    returns: str,
    doc: str,
    category: str,
    normalize: Callable[[tuple], tuple] | None = None,
    permission: str | None = None,
    fields: Sequence[Field] = (),
) -> Callable[[Callable], Callable]:
    """Declare and register a binding; the decorated function is returned unchanged.

    ``permission``: a binding that changes what a role must not change (the
    device registry, its secrets) names the Django permission it needs; the
    run's principal (RunContext.principal) must hold it, else the call is a
    Lua error saying why."""
    if category not in CATEGORIES:
        raise ValueError(f"binding {name}: unknown category {category!r}")

    def register(func: Callable) -> Callable:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.func is not func:
            same_place = (existing.func.__module__, existing.func.__qualname__) == (
                func.__module__,
                func.__qualname__,
            )
            if not same_place:  # a module reload re-registers the same function
                raise ValueError(f"binding {name} is declared twice")
        _REGISTRY[name] = Binding(
            name=name,
            params=tuple(params),
            returns=returns,
            doc=doc,
            func=func if permission is None else _guarded(name, permission, func),
            category=category,
            normalize=normalize,
            permission=permission,
            fields=tuple(fields),
        )
        return func

    return register


def all_bindings() -> list[Binding]:
    """Every registered binding, sorted by name."""
    return list(binding_table()[0])


def binding_table() -> tuple[tuple[Binding, ...], tuple[bytes, ...]]:
    """The bindings sorted by name and their names as bytes, made once while
    the registry does not change: what the engine binds in every run."""
    table = _REGISTRY.table
    if table is None:
        bindings = tuple(sorted(_REGISTRY.values(), key=lambda b: b.name))
        table = _REGISTRY.table = (bindings, tuple(b.name.encode() for b in bindings))
    return table


# ---------------------------------------------------------------- argument checks

_EXPECTED = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "table": "a table",
    "function": "a function",
}


def describe_value(value: Any) -> str:
    """How a Lua value is shown after "got" in an argument error."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        escaped = shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, LuaCallback):
        return "a function"
    if isinstance(value, dict | list):
        return "a table"
    return f"a {type(value).__name__}"


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "table":
        return isinstance(value, dict | list)
    if kind == "function":
        return isinstance(value, LuaCallback)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "number":
        return is_number
    # integer
    return is_number and (isinstance(value, int) or (math.isfinite(value) and value.is_integer()))


def _expectation(param: Param, value: Any) -> str | None:
    """What ``value`` should have been for ``param``, or None when it is fine."""
    if param.type == "any" and param.check is not None:
        return param.check(value)  # the check says what "any" must be, nil included
    if not _type_ok(param.type, value) or (value is None and param.type == "any"):
        return _EXPECTED.get(param.type, "a value")
    return param.check(value) if param.check is not None else None


def check_arguments(b: Binding, args: tuple) -> tuple:
    """The arguments for b.func: normalized, checked, padded to the declared count.

    Raises ArgumentError with `NAME: argument #N (LABEL) must be EXPECTATION, got GOT`.
    """
    if b.normalize is not None:
        args = tuple(b.normalize(tuple(args)))
    checked = []
    for index, param in enumerate(b.params):
        value = args[index] if index < len(args) else None
        if value is None and param.optional:
            checked.append(None)
            continue
        if param.type == "integer" and isinstance(value, float) and _type_ok("integer", value):
            value = int(value)
        expectation = _expectation(param, value)
        if expectation is not None:
            label = param.label or param.name
            raise ArgumentError(
                f"{b.name}: argument #{index + 1} ({label}) must be {expectation}, "
                f"got {describe_value(value)}"
            )
        checked.append(value)
    return tuple(checked)
