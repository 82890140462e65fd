"""The hard caps of a run's limits: no run gets more, whatever is stored.

The platform settings (the Settings page) hold the defaults every run gets;
a script may lower them, and only an Admin may raise them for a script, up to
these caps (oktoscripts/scripts/editing.py). The worker applies the caps to every run it
takes, so a value stored by any other means still cannot take the machine: a
day of wall-clock time, 16 GiB of Lua memory, 100 billion instructions, a
gibibyte of output.
"""

from __future__ import annotations

import dataclasses

from oktoscripts.lua.limits import Limits

HARD_CAPS = Limits(
    instructions=100_000_000_000,
    memory_bytes=16 * 1024 * 1024 * 1024,
    wall_seconds=86_400.0,
    output_bytes=1024 * 1024 * 1024,
)


def capped(limits: Limits) -> Limits:
    """``limits`` with each field at most its hard cap."""
    return dataclasses.replace(
        limits,
        **{
            field.name: min(getattr(limits, field.name), getattr(HARD_CAPS, field.name))
            for field in dataclasses.fields(Limits)
        },
    )
