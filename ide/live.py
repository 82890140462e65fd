"""The web process's NATS connection for live run output (one per event loop)."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client

from oktoscripts.bus.connection import connect

_clients: dict[asyncio.AbstractEventLoop, Client] = {}
_lock: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def client() -> Client:
    """The shared client of the running loop, connected on first use."""
    loop = asyncio.get_running_loop()
    lock = _lock.setdefault(loop, asyncio.Lock())
    async with lock:
        nc = _clients.get(loop)
        if nc is None or nc.is_closed:
            nc = await connect("oktoscripts-web")
            _clients[loop] = nc
        return nc
