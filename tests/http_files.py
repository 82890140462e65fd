"""A tiny HTTP server of fixed files, for the devices' downloads in tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from oktoscripts.cwmp.http11 import Response, ServerConnection


@contextlib.asynccontextmanager
async def serve_files(files: dict[str, bytes]) -> AsyncIterator[str]:
    """Its base URL; GET of a path in ``files`` gets those bytes, anything else 404."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        http = ServerConnection(reader, writer, 4096)
        try:
            while (request := await http.next_request(5)) is not None:
                body = files.get(request.target)
                await http.send(Response(200, [], body) if body else Response(404))
        except Exception:  # noqa: BLE001 - the client hung up
            pass
        finally:
            await http.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
