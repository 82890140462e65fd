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
