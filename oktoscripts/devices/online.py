"""Whether a device is online: the rule, in one place.

Each protocol keeps its own view under ``<protocol>.state`` (0/1/2) and
``<protocol>.offline_at`` (when that view expires; None while a live
connection vouches for the device, as a connected USP MTP does). The
device's top-level ``status`` is the highest state among the protocols whose
view has not expired, and its top-level ``offline_at`` is when that could
next change. The sweeper only looks at the top level (indexed); it recomputes
a device from the protocol views, so a device spoken to over both protocols
stays online as long as either says so.

CWMP's silence limit is a multiple of the CPE's periodic inform interval
(``OKTOSCRIPTS_OFFLINE_FACTOR``, default 3) or, when the CPE has no
periodic informs, ``OKTOSCRIPTS_OFFLINE_TIMEOUT`` seconds (default 3600).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from oktoscripts import config
from oktoscripts.devices.documents import OFFLINE, PROTOCOLS, utc

# A CPE's clock, network and session take some time: never expect the next
# Inform sooner than this.
MIN_SILENCE_S = 60.0


def _setting(name: str, env: str) -> float:
    try:
        from django.conf import settings

        value = getattr(settings, name, None)
    except Exception:  # Django not configured (a bare script): fall back to the environment
        value = None
    if value is None:
        value = config.value(env)
    return float(value)


def offline_factor() -> float:
    return _setting("DEVICES_OFFLINE_FACTOR", "OKTOSCRIPTS_OFFLINE_FACTOR")


def offline_timeout_s() -> float:
    return _setting("DEVICES_OFFLINE_TIMEOUT", "OKTOSCRIPTS_OFFLINE_TIMEOUT")


def cwmp_silence_s(periodic_inform_interval: int | None) -> float:
    """How long a CWMP device may stay silent before it counts as offline."""
    if periodic_inform_interval and periodic_inform_interval > 0:
        return max(MIN_SILENCE_S, offline_factor() * periodic_inform_interval)
    return offline_timeout_s()


def deadline(now: datetime, silence_s: float | None) -> datetime | None:
    return None if silence_s is None else now + timedelta(seconds=silence_s)


def effective(doc: dict, now: datetime) -> tuple[int, datetime | None]:
    """(status, offline_at) of a device from its protocols' views at ``now``."""
    status = OFFLINE
    live_deadlines: list[datetime | None] = []
    for protocol in PROTOCOLS:
        view = doc.get(protocol)
        if not isinstance(view, dict):
            continue
        state = view.get("state") or OFFLINE
        until = utc(view.get("offline_at"))
        if state <= OFFLINE or (until is not None and until <= now):
            continue
        status = max(status, state)
        live_deadlines.append(until)
    if not live_deadlines:
        return OFFLINE, None
    if any(until is None for until in live_deadlines):
        return status, None
    # The status could drop when the soonest view expires: wake the sweeper then.
    return status, min(live_deadlines)
