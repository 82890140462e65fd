"""The run console WebSocket: frames a run's feed (oktoscripts/runs/live.py) as
JSON messages to the browser; the feed does the rest (stored lines, then the
live tail, nothing missed, nothing twice).

Messages to the browser:
``{"type": "run", "status", ...}``, ``{"type": "lines", "lines": [...]}``,
``{"type": "status", "status"}``, ``{"type": "end", "status", "result", "error", "metrics"}``.
Close codes: 4403 (the user may not read runs), 4404 (no such run), 1011 (failure).
A refused console is accepted and then closed with its code: a handshake refused
outright reaches the browser as a bare 1006, which it cannot tell from a lost
connection (and would retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from oktoscripts.roles import Capability, can
from oktoscripts.runs import live

log = logging.getLogger(__name__)

PENDING_WAIT_S = 10.0  # how long a console opened before its run waits for the run


@database_sync_to_async
def _allowed(user: Any) -> bool:
    return can(user, Capability.READ)


class RunConsoleConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.feed: live.RunFeed | None = None
        self.pump: asyncio.Task | None = None
        if not await _allowed(self.scope.get("user")):
            await self._refuse(4403)
            return
        run_id = str(self.scope["url_route"]["kwargs"]["run_id"])
        query = parse_qs(self.scope.get("query_string", b"").decode())
        after, tail = 0, None
        with contextlib.suppress(ValueError, IndexError):
            after = int(query.get("after", ["0"])[0])
        with contextlib.suppress(ValueError, IndexError, KeyError):
            # ?tail=N: only the last N stored lines; the page fetches the others
            # by seq (GET /api/runs/<id>/output) when they scroll into view.
            tail = max(0, min(int(query["tail"][0]), live.TAIL_MAX))
        # ?pending=1: the browser opens the console while it submits the run
        # (with a run id it chose), so the connection is ready when the first
        # line comes; the run must then appear within PENDING_WAIT_S.
        pending = query.get("pending", ["0"])[0] == "1"
        if not pending and not await live.RunFeed.exists(run_id):
            await self._refuse(4404)
            return
        await self.accept()
        self.feed = live.RunFeed(run_id, after, tail)
        await self.feed.subscribe(await live.client())
        self.pump = asyncio.create_task(self._forward(PENDING_WAIT_S if pending else 0.0))

    async def _refuse(self, code: int) -> None:
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.pump is not None:
            self.pump.cancel()
        if self.feed is not None:
            await self.feed.close()

    async def _forward(self, wait_for_run: float) -> None:
        try:
            async for kind, data in self.feed.events(wait_for_run):
                await self.send_json({"type": kind, **data})
        except asyncio.CancelledError:
            raise
        except live.RunGone:
            await self.close(code=4404)
        except Exception:
            log.exception("run console %s failed", self.feed.run_id)
            await self.close(code=1011)
