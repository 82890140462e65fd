"""The debugger WebSocket (``ws/runs/<id>/debug/``): the browser's side of a
debug run. It relays the browser's requests over the bus to the worker
holding the run (oktoscripts/runs/debugbus.py) and the debugger's events
back; the browser never talks to a worker, and any web process can serve it.

Messages from the browser: ``{"id": n, "op": ..., ...}`` (the ops of
debugbus). To the browser: ``{"type": "reply", "id": n, "ok": ..., "result"
or "error"}`` and ``{"type": "debug", "event": "paused" | "resumed" |
"ended", ...}``. Who may: a user with the run capability (Operator, Admin),
on a debug run they started (an Admin on any). Close codes: 4403 (not
allowed), 4404 (no such debug run).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from oktoscripts.bus import subjects
from oktoscripts.roles import Capability, can
from oktoscripts.runs import debugbus, live
from oktoscripts.runs.models import Run

log = logging.getLogger(__name__)

# How long the first configure (or a state) waits for a worker to take the run.
TAKE_WAIT_S = 30.0
MAX_MESSAGE_CHARS = 64 * 1024


@database_sync_to_async
def _access(user: Any, run_id: str) -> int:
    """0 when `user` may debug the run, else the close code."""
    if not can(user, Capability.RUN):
        return 4403
    run = Run.objects.filter(pk=run_id, debug=True).only("user_id").first()
    if run is None:
        return 4404
    if run.user_id != user.pk and not can(user, Capability.ADMIN):
        return 4403
    return 0


class DebugConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.subscription = None
        self.run_id = str(self.scope["url_route"]["kwargs"]["run_id"])
        refusal = await _access(self.scope.get("user"), self.run_id)
        if refusal:
            await self.close(code=refusal)
            return
        await self.accept()
        self.nc = await live.client()
        self.subscription = await self.nc.subscribe(
            subjects.debug_events(self.run_id), cb=self._on_event
        )

    async def disconnect(self, code: int) -> None:
        if self.subscription is not None:
            try:
                await self.subscription.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - the connection is gone already
                log.debug("debug events: unsubscribe failed: %s", exc)

    async def _on_event(self, msg: Any) -> None:
        try:
            event = json.loads(msg.data)
        except ValueError:
            return
        await self.send_json({"type": "debug", **event})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_MESSAGE_CHARS:
            await self.send_json(
                {
                    "type": "reply",
                    "id": None,
                    "ok": False,
                    "error": "a request is a JSON text of at most 64 KiB",
                }
            )
            return
        await super().receive(text_data=text_data)

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return json.loads(text_data)
        except ValueError:
            return None  # answered as a bad request below

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("op"), str):
            await self.send_json(
                {
                    "type": "reply",
                    "id": None,
                    "ok": False,
                    "error": "a request is an object with an op",
                }
            )
            return
        ident = content.pop("id", None)
        wait = TAKE_WAIT_S if content["op"] in ("configure", "state") else 0.0
        try:
            answer = await debugbus.ask(self.nc, self.run_id, content, wait_s=wait)
        except debugbus.DebugUnavailable as exc:
            answer = {"ok": False, "error": str(exc)}
        await self.send_json({"type": "reply", "id": ident, **answer})
