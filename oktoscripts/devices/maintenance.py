"""The registry's periodic upkeep, for the processes that own devices.

The ACS and the USP controller each run ``maintain(registry)`` as a task for
as long as they live. It sweeps at once when started, so devices left
"online" by a platform that stopped are corrected as soon as a protocol
process is back, then every ``every_s`` seconds: devices whose silence
expired go offline, and new-device events a crash left unpublished go out.
Several processes may run it at the same time: both steps are idempotent.
"""

from __future__ import annotations

import asyncio
import logging

from pymongo.errors import PyMongoError

from oktoscripts.devices.registry import DeviceRegistry

log = logging.getLogger(__name__)

DEFAULT_EVERY_S = 15.0


async def maintain_once(registry: DeviceRegistry) -> tuple[int, int]:
    """One sweep and one retry of pending announcements: (went offline, announced)."""
    offline = await asyncio.to_thread(registry.sweep_offline)
    announced = await asyncio.to_thread(registry.announce_pending)
    return offline, announced


async def maintain(registry: DeviceRegistry, every_s: float = DEFAULT_EVERY_S) -> None:
    """Run until cancelled (then it records the events acknowledged so far).
    A database outage is logged and retried next round."""
    try:
        while True:
            try:
                offline, announced = await maintain_once(registry)
                if offline or announced:
                    log.info(
                        "devices: %d went offline, %d new-device events re-sent", offline, announced
                    )
            except PyMongoError as exc:
                log.warning("devices: upkeep failed, retrying in %.0f s: %s", every_s, exc)
            await asyncio.sleep(every_s)
    finally:
        registry.flush_announced()
