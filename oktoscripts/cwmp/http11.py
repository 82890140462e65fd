"""HTTP/1.1 over asyncio streams with h11: a server connection (one per TCP
connection, so CWMP sessions can be keyed by it) and a small keep-alive client.
Used by the ACS, its Connection Requests and the CPE simulator.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

READ_CHUNK = 65536
DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpError(Exception):
    """The peer broke HTTP, hung up, or did not answer in time."""


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # lowercased names; repeated headers joined with ", "
    body: bytes = b""


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # A large body sent as it is read (ServerConnection.send): ``length`` bytes
    # in pieces, instead of ``body``.
    stream: AsyncIterator[bytes] | None = None
    length: int = 0

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), "")


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out and key != "cookie" else text
    return out


class BodyTooLarge(HttpError):
    pass


class ServerConnection:
    """The server side of one TCP connection: read requests one by one, answer each.

    A request's head comes first (``next_head``) and its body only when asked
    (``read_body``), so a server can refuse a request on its headers without
    holding its body: ``discard_body`` reads a short body away (the connection
    stays usable), and ``close`` lingers a moment reading what the peer still
    sends, so that it gets the answer instead of a reset."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int
    ) -> None:
        self.reader, self.writer = reader, writer
        self.max_body = max_body
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        peer = writer.get_extra_info("peername")
        self.peer_ip: str = peer[0] if peer else ""

    async def _next_event(self, timeout: float) -> object:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError(f"bad HTTP: {exc}") from None
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(READ_CHUNK), timeout)
            self.conn.receive_data(data)

    async def next_head(self, timeout: float) -> Request | None:
        """The next request's method, target and headers (its body not read
        yet), or None when the peer closed the connection. HttpError on a
        protocol error; TimeoutError when the peer says nothing for ``timeout``
        seconds."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        event = await self._next_event(timeout)
        if isinstance(event, h11.ConnectionClosed):
            return None
        if not isinstance(event, h11.Request):
            raise HttpError(f"unexpected {type(event).__name__} before a request")
        return Request(
            event.method.decode("latin-1"),
            event.target.decode("latin-1"),
            _headers(event.headers),
        )

    async def read_body(self, request: Request, timeout: float) -> None:
        """Read the body of the request ``next_head`` returned into ``request.body``.
        BodyTooLarge past ``max_body`` bytes."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            raise BodyTooLarge(f"body of {int(length)} bytes over the limit")
        if self.conn.they_are_waiting_for_100_continue:
            await self._write(self.conn.send(h11.InformationalResponse(status_code=100)))
        body = bytearray()
        while True:
            event = await self._next_event(timeout)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body:
                    raise BodyTooLarge(f"body over the limit of {self.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                request.body = bytes(body)
                return
            else:
                raise HttpError("peer closed the connection mid-request")

    async def discard_body(self, limit: int, timeout: float) -> bool:
        """Read the current request's body away without keeping it. False
        when it is longer than ``limit`` bytes, takes longer than ``timeout``,
        or the peer waits for 100 Continue: the connection must then close."""
        if self.conn.they_are_waiting_for_100_continue:
            return False
        left = limit
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self._next_event(timeout)
                    if isinstance(event, h11.EndOfMessage):
                        return True
                    if not isinstance(event, h11.Data):
                        return False
                    left -= len(event.data)
                    if left < 0:
                        return False
        except TimeoutError:
            return False

    async def send(self, response: Response, close: bool = False) -> None:
        headers = [(k, v) for k, v in response.headers]
        length = response.length if response.stream is not None else len(response.body)
        headers.append(("Content-Length", str(length)))
        if close:
            headers.append(("Connection", "close"))
        try:
            data = self.conn.send(h11.Response(status_code=response.status, headers=headers))
            if response.stream is not None:
                await self._write(data)
                data = b""
                # Piece by piece, each written before the next is read: at most
                # one piece in memory per connection, however large the body.
                async for piece in response.stream:
                    await self._write(self.conn.send(h11.Data(data=piece)))
            elif response.body:
                data += self.conn.send(h11.Data(data=response.body))
            data += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            # Fewer bytes than announced: the client must not take it as whole.
            raise HttpError(f"cannot answer: {exc}") from None
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    @property
    def must_close(self) -> bool:
        return self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE

    async def close(self, linger_s: float = 0.0, linger_bytes: int = 0) -> None:
        """Close the connection. With ``linger_s``, first read and drop what
        the peer still sends (at most ``linger_bytes``, for at most
        ``linger_s``): closing with unread data would reset the connection,
        and the peer could lose the answer it was sent."""
        if linger_s > 0 and not self.writer.is_closing():
            try:
                async with asyncio.timeout(linger_s):
                    while linger_bytes > 0:
                        data = await self.reader.read(READ_CHUNK)
                        if not data:
                            break
                        linger_bytes -= len(data)
            except (TimeoutError, OSError, ConnectionError, asyncio.CancelledError):
                pass  # cancelled: the server is stopping, and closes the connection now
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ConnectionError):
            pass

    async def next_request(self, timeout: float) -> Request | None:
        """The next whole request (head and body), or None when the peer closed."""
        request = await self.next_head(timeout)
        if request is not None:
            await self.read_body(request, timeout)
        return request


class ClientConnection:
    """A keep-alive HTTP/1.1 client to one host:port; reconnects when needed.
    An https:// URL is reached over TLS with ``ssl_context`` (default: the
    system's CAs), the server's certificate checked for the URL's host."""

    def __init__(
        self, url: str, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"unsupported URL {url!r} (http:// or https:// only)")
        self.scheme = parts.scheme
        self.host, self.port = parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.ssl: ssl.SSLContext | None = None
        if self.scheme == "https":
            self.ssl = ssl_context or ssl.create_default_context()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.conn: h11.Connection | None = None

    async def request(
        self,
        method: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        target: str | None = None,
    ) -> Response:
        try:
            return await asyncio.wait_for(
                self._request(method, headers or [], body, target or self.path), self.timeout
            )
        except (TimeoutError, OSError, h11.ProtocolError) as exc:
            await self.close()
            raise HttpError(
                f"{method} {self.scheme}://{self.host}:{self.port}: {type(exc).__name__} {exc}"
            ) from None

    async def _request(
        self, method: str, headers: list[tuple[str, str]], body: bytes, target: str
    ) -> Response:
        if self.conn is not None and self.conn.our_state is h11.DONE:
            if self.conn.their_state is h11.DONE:
                self.conn.start_next_cycle()
            else:
                await self.close()
        if self.conn is None or self.conn.our_state is not h11.IDLE:
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
            )
            self.conn = h11.Connection(h11.CLIENT)
        all_headers = [
            ("Host", f"{self.host}:{self.port}"),
            *headers,
            ("Content-Length", str(len(body))),
        ]
        data = self.conn.send(h11.Request(method=method, target=target, headers=all_headers))
        if body:
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        assert self.writer is not None and self.reader is not None
        self.writer.write(data)
        await self.writer.drain()
        response: h11.Response | None = None
        chunks = []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(READ_CHUNK))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                result = Response(
                    response.status_code,
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers],
                    b"".join(chunks),
                )
                if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
                    await self.close()
                return result
            elif isinstance(event, h11.ConnectionClosed):
                raise OSError("connection closed before the response")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (OSError, ConnectionError):
                pass
        self.reader = self.writer = None
        self.conn = None
