"""Publishing from plain (non-async) callbacks, in order, without blocking.

The Lua driver reports output lines through a synchronous callback on the
event loop thread; it cannot await a publish. ``Outbox.put`` queues the
message and one task publishes the queue in order.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client
from nats.errors import Error as NatsError

log = logging.getLogger(__name__)


class Outbox:
    """Fire-and-forget, ordered publishing for one NATS client.

    Messages are never dropped on a slow connection (nats-py buffers while
    reconnecting); a payload larger than the server allows is dropped and
    logged (callers keep live copies small; the database has the full text)."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._pump(), name="outbox")

    def put(self, subject: str, payload: bytes) -> None:
        self._idle.clear()
        self._queue.put_nowait((subject, payload))

    async def drain(self) -> None:
        """Wait until everything queued so far was handed to the client, and flush it."""
        await self._idle.wait()
        if self._nc.is_connected:
            await self._nc.flush()

    async def stop(self) -> None:
        await self.drain()
        if self._task:
            self._task.cancel()

    async def _pump(self) -> None:
        while True:
            subject, payload = await self._queue.get()
            await self._publish(subject, payload)
            while not self._queue.empty():
                await self._publish(*self._queue.get_nowait())
            self._idle.set()

    async def _publish(self, subject: str, payload: bytes) -> None:
        limit = self._nc.max_payload
        if len(payload) > limit:
            log.warning(
                "not published on %s: %d bytes, over the server's %d", subject, len(payload), limit
            )
            return
        try:
            await self._nc.publish(subject, payload)
        except NatsError as exc:  # closed or over the reconnect buffer: live copy lost, DB has it
            log.warning("could not publish on %s: %s", subject, exc)
