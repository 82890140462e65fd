"""Settings of the run queue and workers: Django setting first, then the
environment (declared with its default in oktoscripts/config.py).
"""

from __future__ import annotations

import os

from oktoscripts import config
from oktoscripts.config import ConfigError


def _number(name: str, default: float | None = None) -> float:
    """``default``: when the table's is computed (None there)."""
    from django.conf import settings

    value = getattr(settings, name, None)
    if value is None:
        value = config.value(name)
        if value is None:
            value = default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"expected a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(name, f"must be greater than 0, got {value!r}")
    return number


def concurrency() -> int:
    return int(_number("OKTOSCRIPTS_WORKER_CONCURRENCY"))


def lua_threads() -> int:
    return int(_number("OKTOSCRIPTS_WORKER_LUA_THREADS", os.cpu_count() or 2))


def heartbeat_interval() -> float:
    return _number("OKTOSCRIPTS_WORKER_HEARTBEAT")


def lost_after() -> float:
    """Seconds without a heartbeat before a worker counts as dead."""
    lost = _number("OKTOSCRIPTS_WORKER_LOST_AFTER")
    if lost <= heartbeat_interval():
        raise ConfigError(
            "OKTOSCRIPTS_WORKER_LOST_AFTER",
            f"must be longer than the heartbeat interval ({heartbeat_interval()}s), got {lost}",
        )
    return lost


def stuck_restart() -> float:
    """A Lua thread abandoned in a call that cannot be interrupted (a C call
    such as a backtracking string.find, LuaJIT's compiled recursion) keeps a
    core busy after its run ended; past this many seconds the worker drains
    and exits so that its supervisor starts a fresh one."""
    return _number("OKTOSCRIPTS_WORKER_STUCK_RESTART")


def debug_pause_seconds() -> float:
    """How long a debug run may stay paused in all before it is cancelled."""
    return _number("OKTOSCRIPTS_DEBUG_WALL_SECONDS")
