"""Listener activity of runs: each event a listener callback starts on, as the
engine reports it through LuaRun's ``on_listener_event`` hook, announced on
NATS (``<prefix>.listeners.<run id>.event``), so that deployed listeners show
their event counts and last events, and the benchmark measures
event-to-callback latency. Core NATS (no storage): these are figures for
people, and the run's own output stays the record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from oktoscripts.bus import subjects

log = logging.getLogger(__name__)

# Events are cut to this size on the bus (a huge event is still counted).
EVENT_TEXT_MAX = 2000


def listener_event_subject(run_id: str = "*") -> str:
    return subjects.subject("listeners", run_id, "event")


# Publishing tasks in flight (the loop holds tasks only weakly).
_in_flight: set[asyncio.Task] = set()


def announce_soon(services: Any, run_id: str, event: Any) -> None:
    """The hook a host gives the engine (``partial(announce_soon, services, run_id)``),
    called on its loop as a listener callback starts. Never raises and never
    waits: the engine's path gets no new await point."""
    if getattr(services, "nats", None) is None or not run_id:
        return
    task = asyncio.get_running_loop().create_task(announce(services, run_id, event))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


async def announce(services: Any, run_id: str, event: Any) -> None:
    """Publish one listener event (never raises)."""
    nc = getattr(services, "nats", None) if services is not None else None
    if nc is None or not run_id:
        return
    try:
        text = json.dumps(event, default=str)
        if len(text) > EVENT_TEXT_MAX:
            text = json.dumps({"cut": text[:EVENT_TEXT_MAX]})
        payload = f'{{"run_id": {json.dumps(run_id)}, "time": {time.time()!r}, "event": {text}}}'
        await nc.publish(listener_event_subject(run_id), payload.encode())
    except Exception as exc:  # noqa: BLE001 - figures only: never disturb the run
        log.debug("listener event of run %s not announced: %s", run_id, exc)
