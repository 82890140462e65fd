"""A TCP proxy in front of the database that can drop connections on demand:
what a MongoDB failover or a network blip looks like to a client (pymongo
raises AutoReconnect on the request that was under way); or hold requests
until released: a database that is slow for some of them. It runs on a
thread of its own: the ACS calls pymongo's blocking API from its event loop
at start, which must not wait on a proxy served by that same loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class FlakyProxy:
    def __init__(self, backend: tuple[str, int]) -> None:
        self.backend = backend
        self.port = 0
        self.dropped = 0
        self._drop_next = 0
        self._drop_marker = b""
        self.held = 0
        self._hold_marker = b""
        self._released: asyncio.Event | None = None
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):  # the pipes end by themselves
            writer.transport.abort()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    def drop_next(self, requests: int, containing: bytes = b"") -> None:
        """The next ``requests`` requests of any client (that contain the bytes
        ``containing``) are not passed on: their connection is closed instead."""
        self._drop_marker = containing
        self._drop_next = requests

    def hold(self, containing: bytes) -> None:
        """Requests that contain ``containing`` wait (their connection with them)
        until release()."""
        self._hold_marker = containing

    def release(self) -> None:
        self._hold_marker = b""
        if self._released is not None:
            self._loop.call_soon_threadsafe(self._released.set)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            backend_reader, backend_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            writer.close()
            return
        task = asyncio.current_task()
        self._pipes.add(task)
        self._writers.update((writer, backend_writer))
        try:
            await asyncio.gather(
                self._client_to_backend(reader, backend_writer, writer),
                _pipe(backend_reader, writer),
            )
        finally:
            self._pipes.discard(task)
            for w in (writer, backend_writer):
                self._writers.discard(w)
                w.close()

    async def _client_to_backend(self, reader, backend_writer, client_writer) -> None:
        try:
            while data := await reader.read(65536):
                if self._drop_next > 0 and self._drop_marker in data:
                    self._drop_next -= 1
                    self.dropped += 1
                    client_writer.transport.abort()
                    backend_writer.transport.abort()
                    return
                if self._hold_marker and self._hold_marker in data:
                    self._released = self._released or asyncio.Event()
                    self.held += 1
                    await self._released.wait()
                backend_writer.write(data)
                await backend_writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            backend_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()
