"""The resource limits of one run, with platform defaults and per-script overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from oktoscripts import config

# The names a limit has in messages ("instruction limit of 1000 exceeded").
LIMIT_LABELS = {
    "instructions": "instruction limit",
    "memory_bytes": "memory limit",
    "wall_seconds": "wall-clock limit",
    "output_bytes": "output limit",
}

# RunError.limit uses short names; "memory_bytes" is reported as "memory".
LIMIT_KINDS = {
    "instructions": "instructions",
    "memory_bytes": "memory",
    "wall_seconds": "wall_seconds",
    "output_bytes": "output_bytes",
    "result_bytes": "result_bytes",
}

# Overrides may use either spelling.
_ALIASES = {"memory": "memory_bytes", "wall": "wall_seconds", "output": "output_bytes"}


@dataclass(frozen=True)
class Limits:
    """Per-run limits. Each holds for the main chunk; instructions and wall-clock
    time hold for each listener callback invocation separately, memory and output
    for the run as a whole."""

    instructions: int = 1_000_000_000
    memory_bytes: int = 256 * 1024 * 1024
    wall_seconds: float = 600.0
    output_bytes: int = 4 * 1024 * 1024

    @classmethod
    def defaults(cls) -> Limits:
        """The platform defaults: the values above, each replaceable by an
        environment variable OKTOSCRIPTS_LIMIT_<NAME> (e.g.
        OKTOSCRIPTS_LIMIT_WALL_SECONDS=60)."""
        # Read for every run (a few microseconds), parsed again only when
        # they change.
        raw = config.texts(_ENV_NAMES)
        cached = _defaults_cache.get(raw)
        if cached is None:
            cached = _parse_defaults(cls, raw)
            _defaults_cache.clear()  # keep only the current environment's
            _defaults_cache[raw] = cached
        return cached

    @classmethod
    def with_overrides(cls, overrides: dict | None, base: Limits | None = None) -> Limits:
        """`base` (the platform defaults when None) with the given fields replaced.

        Unknown names and values that are not positive numbers raise ValueError,
        so a typo in a script's settings is reported instead of ignored.
        """
        base = base or cls.defaults()
        if not overrides:
            return base
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            name = _ALIASES.get(key, key)
            if name not in LIMIT_LABELS:
                raise ValueError(f"unknown limit {key!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"limit {key!r} must be a positive number, got {value!r}")
            changes[name] = float(value) if name == "wall_seconds" else int(value)
        return dataclasses.replace(base, **changes)

    def describe(self, name: str) -> str:
        """'wall-clock limit of 2 s' for messages."""
        value = getattr(self, name)
        if name == "wall_seconds":
            return f"{LIMIT_LABELS[name]} of {value:g} s"
        if name in ("memory_bytes", "output_bytes"):
            return f"{LIMIT_LABELS[name]} of {_size(value)}"
        return f"{LIMIT_LABELS[name]} of {value} instructions"


_ENV_NAMES = tuple(f"OKTOSCRIPTS_LIMIT_{name.upper()}" for name in LIMIT_LABELS)
_defaults_cache: dict[tuple, Limits] = {}


def _parse_defaults(cls: type[Limits], raw: tuple) -> Limits:
    overrides = {}
    for name, env_name, text in zip(LIMIT_LABELS, _ENV_NAMES, raw, strict=True):
        if text:
            try:
                overrides[name] = float(text) if "." in text or "e" in text else int(text)
            except ValueError:
                raise ValueError(f"{env_name}: not a number") from None
    return cls.with_overrides(overrides, base=cls())


# The result limit: a platform setting, not a per-script one. The JSON of a
# run's returned value (or error value) is stored with the run and sent to
# whoever watches it; past this size the run fails instead.
RESULT_BYTES_DEFAULT = 16 << 20
_RESULT_ENV = "OKTOSCRIPTS_LIMIT_RESULT_BYTES"


def result_limit_bytes() -> int:
    """The result limit: OKTOSCRIPTS_LIMIT_RESULT_BYTES, else 16 MiB."""
    text = config.text(_RESULT_ENV)
    if not text:
        return RESULT_BYTES_DEFAULT
    try:
        value = int(float(text))
    except ValueError:
        raise ValueError(f"{_RESULT_ENV}: not a number") from None
    if value <= 0:
        raise ValueError(f"{_RESULT_ENV}: must be a positive number")
    return value


def describe_result_limit(value: int) -> str:
    return f"result limit of {_size(value)}"


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"
