"""Platform settings: the default run limits and the default runtime of new scripts.

The limits a run gets are, field by field: the script's override, else the
platform setting (this module), else the built-in default (``Limits.defaults()``).
``effective_limits`` computes that and the result is stored on the Run, so the
worker applies exactly what the Run shows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from oktoscripts.lua.limits import Limits
from oktoscripts.runs.caps import HARD_CAPS, capped
from oktoscripts.scripts import audit
from oktoscripts.scripts.models import PlatformSettings, Script

MIB = 1024 * 1024


@dataclass(frozen=True)
class LimitField:
    """One limit as the settings page shows it: in a unit people read, with bounds."""

    name: str  # the Limits field
    label: str
    unit: str  # the form's unit
    scale: int  # engine units per form unit
    minimum: float  # engine units
    maximum: float  # engine units
    integer: bool = True

    def to_form(self, value: float | None) -> str:
        """The value in the form's unit, exact enough to save back unchanged."""
        if value is None:
            return ""
        return _plain(value / self.scale)

    def describe(self, value: float) -> str:
        return f"{_plain(value / self.scale, grouped=True)} {self.unit}"


def _plain(number: float, grouped: bool = False) -> str:
    """A number without exponent notation: 1048576, 12.5, 0.001."""
    if number == int(number):
        return f"{int(number):,}" if grouped else str(int(number))
    return f"{number:,.12g}" if grouped else f"{number:.12g}"


# The maxima are the hard caps of oktoscripts/runs/caps.py: one run cannot take the machine.
LIMIT_FIELDS = (
    LimitField("instructions", "Instructions", "million", 1_000_000, 1_000, HARD_CAPS.instructions),
    LimitField("memory_bytes", "Memory", "MiB", MIB, MIB, HARD_CAPS.memory_bytes),
    LimitField(
        "wall_seconds", "Wall-clock time", "s", 1, 0.1, HARD_CAPS.wall_seconds, integer=False
    ),
    LimitField("output_bytes", "Output", "KiB", 1024, 1024, HARD_CAPS.output_bytes),
)
FIELDS_BY_NAME = {f.name: f for f in LIMIT_FIELDS}
RUNTIMES = dict(Script.RUNTIMES)


class SettingsError(ValueError):
    """Invalid settings; ``errors`` maps a field name to a message people can act on."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {msg}" for name, msg in errors.items()))
        self.errors = errors


def current() -> PlatformSettings:
    return PlatformSettings.load()


def stored_limits(row: PlatformSettings) -> dict[str, float | int | None]:
    """The limits the settings hold, in engine units; None = the built-in default."""
    return {f.name: getattr(row, f.name) for f in LIMIT_FIELDS}


def platform_limits(row: PlatformSettings | None = None) -> Limits:
    """The built-in defaults with the platform settings applied."""
    row = row or current()
    overrides = {k: v for k, v in stored_limits(row).items() if v is not None}
    return Limits.with_overrides(overrides, base=Limits.defaults())


def effective_limits(script_overrides: dict[str, Any] | None) -> dict[str, float | int]:
    """All four limits of a run: script override > platform setting > built-in
    default, each at most its hard cap."""
    limits = Limits.with_overrides(script_overrides or None, base=platform_limits())
    return dataclasses.asdict(capped(limits))


def describe_limits() -> str:
    """The platform's limits in a line: "600 s · 256 MiB · 1,000 million instructions"."""
    limits = platform_limits()
    wall, memory, instructions = (
        FIELDS_BY_NAME[n] for n in ("wall_seconds", "memory_bytes", "instructions")
    )
    return (
        f"{wall.describe(limits.wall_seconds)} · {memory.describe(limits.memory_bytes)} · "
        f"{instructions.describe(limits.instructions)} instructions"
    )


def default_runtime() -> str:
    return current().default_runtime


def _clean_limit(field: LimitField, value: Any) -> float | int | None:
    """One limit in engine units, or None to use the built-in default."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    if value <= 0:
        raise ValueError("must be a positive number")
    if value < field.minimum:
        raise ValueError(f"must be at least {field.describe(field.minimum)}")
    if value > field.maximum:
        raise ValueError(f"must be at most {field.describe(field.maximum)}")
    return round(value) if field.integer else float(value)


def clean(limits: dict[str, Any] | None, runtime: str | None) -> dict[str, Any]:
    """Validated changes (engine units); raises SettingsError listing every bad field."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    if limits is not None and not isinstance(limits, dict):
        raise SettingsError({"limits": "an object of name: number (or null for the default)"})
    for name, value in (limits or {}).items():
        field = FIELDS_BY_NAME.get(name)
        if field is None:
            errors[name] = f"unknown limit (use {', '.join(FIELDS_BY_NAME)})"
            continue
        try:
            cleaned[name] = _clean_limit(field, value)
        except ValueError as exc:
            errors[name] = f"{field.label} {exc}"
    if runtime is not None:
        if runtime not in RUNTIMES:
            errors["default_runtime"] = f"unknown runtime {runtime!r} (use {' or '.join(RUNTIMES)})"
        else:
            cleaned["default_runtime"] = runtime
    if errors:
        raise SettingsError(errors)
    return cleaned


@transaction.atomic
def update(
    user: Any, limits: dict[str, Any] | None = None, runtime: str | None = None
) -> dict[str, list]:
    """Apply validated changes and audit them; returns {field: [before, after]}."""
    cleaned = clean(limits, runtime)
    row = PlatformSettings.objects.select_for_update().get(pk=current().pk)
    changes = {
        name: [getattr(row, name), value]
        for name, value in cleaned.items()
        if getattr(row, name) != value
    }
    if not changes:
        return {}
    for name, (_, value) in changes.items():
        setattr(row, name, value)
    row.updated, row.updated_by = timezone.now(), user
    row.save()
    audit.record(user, "settings.change", "platform settings", changes=changes)
    return changes


def as_json(row: PlatformSettings | None = None) -> dict[str, Any]:
    """The settings as the REST API returns them (engine units)."""
    row = row or current()
    return {
        "limits": stored_limits(row),
        "effective_limits": dataclasses.asdict(platform_limits(row)),
        "builtin_limits": dataclasses.asdict(Limits.defaults()),
        "default_runtime": row.default_runtime,
        "updated": row.updated.isoformat() if row.updated else None,
        "updated_by": row.updated_by.get_username() if row.updated_by else None,
    }
