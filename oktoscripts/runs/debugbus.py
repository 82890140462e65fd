"""Debug runs over the bus: the IDE's requests to the worker holding the run,
and the debugger's events back.

Requests are NATS request/reply on ``debug_control(run_id)``; every worker
listens, only the one holding the run answers, so the browser's WebSocket
may be on any web process and the run on any worker. No answer at all (NATS
"no responders") means no worker holds the run: not taken yet, or over.

A request is a JSON object with an ``op``:

| op | fields | result |
|---|---|---|
| ``state`` | | ``{"state", "breakpoints", "break_on_error", "paused"}`` |
| ``configure`` | ``breakpoints``, ``break_on_error``, ``pause_all`` | state (the first starts it) |
| ``pause`` / ``stop`` | | state |
| ``resume`` | ``command`` (continue, over, in, out, cursor), ``line`` | state |
| ``stack`` | | ``{"reason", "line", "message", "frames"}`` |
| ``scopes`` | ``frame`` (1 = innermost) | ``[{"name", "ref", "count"}]`` |
| ``variables`` | ``ref``, ``start``, ``count`` | ``{"items": [variable...], "more"}`` |
| ``evaluate`` | ``expression``, ``frame`` | a variable |

Every op about a pause (resume, stack, scopes, variables, evaluate) may name
the paused ``activation`` (the main chunk or one listener callback call, as
its "paused" event says); without it, the latest paused one. With
``pause_all`` on, one activation pausing pauses the others at their next
line; off (the default), they go on (and pause at their own breakpoints).

A variable is ``{"name", "value" (as Lua shows it), "type", "ref"}``; a ref
above 0 expands with ``variables`` (valid while the run stays paused).

The answer: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
Events on ``debug_events(run_id)``: DebugSession's events (paused, resumed,
ended) as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from oktoscripts.bus import subjects
from oktoscripts.lua.debugger import DebugError, DebugSession

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0  # an evaluate may wait for the run's Lua thread
MAX_REQUEST_BYTES = 256 * 1024


class DebugUnavailable(Exception):
    """No worker holds the run (not taken yet, or over)."""


async def handle(session: DebugSession, data: bytes) -> dict:
    """Answer one request (worker side)."""
    try:
        if len(data) > MAX_REQUEST_BYTES:
            raise DebugError("request too large")
        request = json.loads(data)
        if not isinstance(request, dict):
            raise DebugError("a request is a JSON object")
        return {"ok": True, "result": await _dispatch(session, request)}
    except (DebugError, ValueError) as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:
        log.exception("debug request failed")
        return {"ok": False, "error": f"internal error: {exc}"}


async def _dispatch(session: DebugSession, request: dict) -> Any:
    op = request.get("op")
    if op == "state":
        return session.snapshot()
    if op == "configure":
        session.configure(
            request.get("breakpoints"), request.get("break_on_error"), request.get("pause_all")
        )
        return session.snapshot()
    if op == "pause":
        session.pause()
        return session.snapshot()
    if op == "resume":
        session.resume(
            request.get("command", "continue"), request.get("line"), _activation(request)
        )
        return session.snapshot()
    if op == "stop":
        session.stop()
        return session.snapshot()
    activation = _activation(request)
    if op == "stack":
        return await session.stack(activation)
    if op == "scopes":
        return await session.scopes(request.get("frame", 1), activation)
    if op == "variables":
        return await session.variables(
            request.get("ref"), request.get("start", 0), request.get("count", 100), activation
        )
    if op == "evaluate":
        return await session.evaluate(
            request.get("expression"), request.get("frame", 1), activation
        )
    raise DebugError(f"unknown op {op!r}")


def _activation(request: dict) -> int | None:
    """Which paused activation a request is about (None: the latest paused)."""
    value = request.get("activation")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise DebugError("activation must be an integer")
    return value


def event_payload(event: dict) -> bytes:
    return json.dumps(event, default=str).encode()


async def ask(nc: Client, run_id: str, request: dict, wait_s: float = 0.0) -> dict:
    """Send a request to the worker holding `run_id`; its answer. Keeps
    trying for `wait_s` while no worker holds the run (a run just queued);
    then raises DebugUnavailable."""
    deadline = time.monotonic() + wait_s
    payload = json.dumps(request).encode()
    while True:
        try:
            msg = await nc.request(
                subjects.debug_control(run_id), payload, timeout=REQUEST_TIMEOUT_S
            )
            return json.loads(msg.data)
        except NoRespondersError:
            if time.monotonic() >= deadline:
                raise DebugUnavailable("the run is not running on any worker") from None
            await asyncio.sleep(0.2)
        except NatsTimeout:
            raise DebugUnavailable("the run's worker did not answer in time") from None
