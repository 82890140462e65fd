"""One port in front of several web processes: a TCP round-robin proxy.

What a load balancer does for the platform's web tier, reduced to the part
that matters here: each new TCP connection (an HTTP keep-alive connection or
a WebSocket) goes to the next backend in turn, skipping one that refuses, and
stays on it until either side closes. Sessions live in the database, so a
browser may land on any web process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter


class RoundRobinProxy:
    def __init__(self, backends: list[tuple[str, int]], host: str = "127.0.0.1") -> None:
        self.backends = backends
        self.host = host
        self.port = 0
        self.connections: Counter[tuple[str, int]] = Counter()  # per backend, since start
        self._turn = itertools.cycle(range(len(backends)))
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _open_backend(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        error: OSError | None = None
        for _ in self.backends:
            backend = self.backends[next(self._turn)]
            try:
                streams = await asyncio.open_connection(*backend)
            except OSError as exc:
                error = exc
                continue
            self.connections[backend] += 1
            return streams
        raise error or OSError("no backend")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            backend_reader, backend_writer = await self._open_backend()
        except OSError:
            writer.close()
            return
        task = asyncio.current_task()
        self._pipes.add(task)
        try:
            await asyncio.gather(_pipe(reader, backend_writer), _pipe(backend_reader, writer))
        finally:
            self._pipes.discard(task)
            for w in (writer, backend_writer):
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the half-close on."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
