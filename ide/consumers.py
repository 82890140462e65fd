"""The run console WebSocket: a run's stored output, then its live tail.

Nothing missed, nothing twice: the consumer subscribes to the run's NATS
subjects *before* reading the stored lines, then forwards live lines whose
``seq`` is greater than the last one sent. A gap (a line published before the
subscription but stored after the read) is filled from the database. The
final status is published only after everything is stored, so on it the
consumer reads the remaining lines and the outcome from the database.

Messages to the browser:
``{"type": "run", "status", ...}``, ``{"type": "lines", "lines": [...]}``,
``{"type": "status", "status"}``, ``{"type": "end", "status", "result", "error", "metrics"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ide import live
from ide.api.serialize import line_json
from oktoscripts.bus import subjects
from oktoscripts.roles import Capability, can
from oktoscripts.runs import live as run_live
from oktoscripts.runs.models import Run, RunOutputLine

log = logging.getLogger(__name__)

BATCH = 500  # lines per WebSocket message
GAP_WAIT_S = 3.0  # how long to wait for a missing line to be stored
PENDING_WAIT_S = 10.0  # how long a console opened before its run waits for the run


@database_sync_to_async
def _allowed(user: Any) -> bool:
    return can(user, Capability.READ)


@database_sync_to_async
def _run_state(run_id: str) -> dict[str, Any] | None:
    return (Run.objects.filter(pk=run_id)
            .values("status", "result", "error", "metrics", "created", "started", "finished",
                    "script_name").first())


@database_sync_to_async
def _stored_lines(run_id: str, after: int, before: int | None = None) -> list[dict[str, Any]]:
    qs = RunOutputLine.objects.filter(run_id=run_id, seq__gt=after)
    if before is not None:
        qs = qs.filter(seq__lt=before)
    return [line_json(x) for x in qs.order_by("seq")[:50_000]]


def _epoch(value: Any) -> float | None:
    return value.timestamp() if value else None


class RunConsoleConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.run_id = str(self.scope["url_route"]["kwargs"]["run_id"])
        self.sent = 0
        self.sub = None
        self.pump: asyncio.Task | None = None
        if not await _allowed(self.scope.get("user")):
            await self.close(code=4403)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        with contextlib.suppress(ValueError, IndexError):
            self.sent = max(0, int(query.get("after", ["0"])[0]))
        # ?pending=1: the browser opens the console while it submits the run
        # (with a run id it chose), so the connection is ready when the first
        # line comes; the run must then appear within PENDING_WAIT_S.
        pending = query.get("pending", ["0"])[0] == "1"
        if not pending and await _run_state(self.run_id) is None:
            await self.close(code=4404)
            return
        await self.accept()
        self.queue: asyncio.Queue = asyncio.Queue()
        nc = await live.client()
        self.sub = await nc.subscribe(subjects.run_events(self.run_id), cb=self.queue.put)
        await nc.flush()  # the subscription is in place before the stored lines are read
        self.pump = asyncio.create_task(self._forward(pending))

    async def disconnect(self, code: int) -> None:
        if self.pump is not None:
            self.pump.cancel()
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()

    async def _send_lines(self, lines: list[dict[str, Any]]) -> None:
        lines = [x for x in lines if x["seq"] > self.sent]
        for i in range(0, len(lines), BATCH):
            await self.send_json({"type": "lines", "lines": lines[i:i + BATCH]})
        if lines:
            self.sent = lines[-1]["seq"]

    async def _wait_for_run(self) -> bool:
        deadline = asyncio.get_running_loop().time() + PENDING_WAIT_S
        while await _run_state(self.run_id) is None:
            if asyncio.get_running_loop().time() > deadline:
                await self.close(code=4404)
                return False
            await asyncio.sleep(0.02)
        return True

    async def _forward(self, pending: bool = False) -> None:
        try:
            if pending and not await self._wait_for_run():
                return
            await self._send_lines(await _stored_lines(self.run_id, self.sent))
            state = await _run_state(self.run_id)
            await self.send_json({"type": "run", "status": state["status"],
                                  "created": _epoch(state["created"]),
                                  "started": _epoch(state["started"])})
            if state["status"] in Run.FINAL:
                await self._end()
                return
            while True:
                batch = [await self.queue.get()]
                while not self.queue.empty() and len(batch) < BATCH:
                    batch.append(self.queue.get_nowait())
                if await self._handle(batch):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run console %s failed", self.run_id)
            await self.close(code=1011)

    async def _handle(self, batch: list[Any]) -> bool:
        """Forward a batch of NATS messages; True when the run has ended."""
        lines: list[dict[str, Any]] = []
        for msg in batch:
            kind = msg.subject.rsplit(".", 1)[-1]
            data = run_live.decode(msg.data) if msg.data else {}
            if kind == "output":
                seq = data.get("seq", 0)
                last = lines[-1]["seq"] if lines else self.sent
                if seq <= last:
                    continue
                if seq > last + 1:
                    await self._send_lines(lines)
                    lines = []
                    await self._fill_gap(seq)
                lines.append(data)
            elif kind == "status":
                await self._send_lines(lines)
                lines = []
                status = data.get("status")
                if status in Run.FINAL:
                    await self._end()
                    return True
                await self.send_json({"type": "status", "status": status})
        await self._send_lines(lines)
        return False

    async def _fill_gap(self, upto: int) -> None:
        """Lines self.sent+1 .. upto-1 went out before we subscribed: read them once stored."""
        deadline = asyncio.get_running_loop().time() + GAP_WAIT_S
        while True:
            lines = await _stored_lines(self.run_id, self.sent, upto)
            if len(lines) >= upto - self.sent - 1 or asyncio.get_running_loop().time() > deadline:
                await self._send_lines(lines)
                return
            await asyncio.sleep(0.05)

    async def _end(self) -> None:
        await self._send_lines(await _stored_lines(self.run_id, self.sent))
        state = await _run_state(self.run_id)
        await self.send_json({
            "type": "end", "status": state["status"], "result": state["result"],
            "error": state["error"], "metrics": state["metrics"],
            "finished": _epoch(state["finished"]),
        })
