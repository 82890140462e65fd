"""NATS for synchronous code (Django views, the shell, management commands).

nats-py is asyncio-only. ``call(fn)`` runs ``await fn(nc)`` on a background
thread that owns one event loop and one connection for the whole process, so
a sync caller pays one connection per process, not one per call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.aio.client import Client

from oktoscripts.bus.connection import connect

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_client: Client | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="nats-blocking", daemon=True).start()
            _loop = loop
        return _loop


_connecting: asyncio.Lock | None = None  # created on the background loop


async def _shared_client() -> Client:
    global _client, _connecting
    if _connecting is None:
        _connecting = asyncio.Lock()
    async with _connecting:
        if _client is None or _client.is_closed:
            # Fail the caller soon when NATS is down; reconnect for ever once connected.
            _client = await connect("oktoscripts-sync", first_attempts=4)
    return _client


def call(fn: Callable[[Client], Awaitable[T]], timeout: float = 10.0) -> T:
    """Run ``fn(nc)`` on the process's background NATS connection and return its result."""

    async def with_client() -> T:
        return await fn(await _shared_client())

    future = asyncio.run_coroutine_threadsafe(with_client(), _background_loop())
    return future.result(timeout)


def close(timeout: float = 5.0) -> None:
    """Close the background connection (it reopens on the next ``call``)."""
    global _client
    if _loop is None or _client is None:
        return

    async def close_client() -> None:
        global _client
        if _client is not None and not _client.is_closed:
            await _client.close()
        _client = None

    asyncio.run_coroutine_threadsafe(close_client(), _loop).result(timeout)
