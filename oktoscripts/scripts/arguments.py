"""The one rule for a run's arguments, whoever starts the run (the IDE, REST,
``runscript``, schedules, triggers, bulk runs, deployments).

Arguments are a JSON object: at most ``MAX_ARGS`` names, each a non-empty
string (spaces around it dropped), each value any JSON value (string, number,
boolean, null, array, object: a script reads arrays and objects as tables), at
most ``MAX_ARGS_BYTES`` as JSON. NaN and infinities are not JSON and are refused.
"""

from __future__ import annotations

import json
from typing import Any

MAX_ARGS = 100
MAX_ARGS_BYTES = 1024 * 1024


class ArgumentError(ValueError):
    """Arguments the rule refuses; ``str()`` says which and why."""


def clean_args(raw: object) -> dict[str, Any]:
    """The arguments as a run stores them (None is no arguments); ArgumentError otherwise."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ArgumentError("'args' must be an object of name: value")
    if len(raw) > MAX_ARGS:
        raise ArgumentError(f"at most {MAX_ARGS} arguments (got {len(raw)})")
    args: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise ArgumentError("argument names must be non-empty strings")
        args[name.strip()] = value
    try:
        size = len(json.dumps(args, allow_nan=False, ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"arguments must be JSON values: {exc}") from None
    if size > MAX_ARGS_BYTES:
        raise ArgumentError(
            f"arguments are at most {MAX_ARGS_BYTES:,} bytes as JSON (these are {size:,})"
        )
    return args


# -- declarations ------------------------------------------------------------------------
#
# A script version declares the arguments it takes: each a name, a type, a
# default (or none) and a description. They are part of the version (immutable
# with it: changing them is saving a new version); named presets of values
# belong to the script (oktoscripts.scripts.models.ArgumentPreset), the values
# a person used last to the person (ide.models.LastArguments).

TYPES = ("string", "number", "boolean", "json", "device")
MAX_NAME = 100
MAX_DESCRIPTION = 500


def _fits(kind: str, value: Any) -> bool:
    """Whether ``value`` is a value of the declared type."""
    if kind in ("string", "device"):
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return True  # json: any JSON value


def clean_declarations(raw: object) -> list[dict[str, Any]]:
    """Declarations as a version keeps them, ``[{"name", "type", "default",
    "description"}]`` (``default`` None: no default); ArgumentError otherwise."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ArgumentError("'arguments' must be a list of declarations")
    if len(raw) > MAX_ARGS:
        raise ArgumentError(f"at most {MAX_ARGS} arguments (got {len(raw)})")
    out: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ArgumentError("each argument declaration is an object")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
            raise ArgumentError(f"argument names are 1 to {MAX_NAME} characters")
        name = name.strip()
        if any(d["name"] == name for d in out):
            raise ArgumentError(f"argument {name!r} is declared twice")
        kind = item.get("type", "string")
        if kind not in TYPES:
            raise ArgumentError(f"argument {name!r}: type must be one of {', '.join(TYPES)}")
        default = item.get("default")
        if default is not None and not _fits(kind, default):
            raise ArgumentError(f"argument {name!r}: its default is not a {kind}")
        description = item.get("description") or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise ArgumentError(f"argument {name!r}: a description is text of at most 500")
        out.append({"name": name, "type": kind, "default": default, "description": description})
    clean_args({d["name"]: d["default"] for d in out})  # the defaults obey the size rule too
    return out


def with_declarations(declarations: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    """``args`` (already clean) with the declared defaults of those not given;
    ArgumentError for a declared argument given a value of another type."""
    out = dict(args)
    for d in declarations:
        name = d["name"]
        if name not in out:
            if d.get("default") is not None:
                out[name] = d["default"]
        elif out[name] is not None and not _fits(d["type"], out[name]):
            raise ArgumentError(f"argument {name!r} must be a {d['type']}")
    return out
