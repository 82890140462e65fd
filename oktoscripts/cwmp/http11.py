"""HTTP/1.1 over asyncio streams with h11: a server connection (one per TCP
connection, so CWMP sessions can be keyed by it) and a small keep-alive client.
Used by the ACS, its Connection Requests and the CPE simulator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

READ_CHUNK = 65536


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
    """The server side of one TCP connection: read requests one by one, answer each."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int
    ) -> None:
        self.reader, self.writer = reader, writer
        self.max_body = max_body
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        peer = writer.get_extra_info("peername")
        self.peer_ip: str = peer[0] if peer else ""

    async def next_request(self, timeout: float) -> Request | None:
        """The next request, or None when the peer closed the connection.
        HttpError on a protocol error or a body over the limit; TimeoutError when
        the peer says nothing for ``timeout`` seconds."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        request: h11.Request | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise HttpError(f"bad HTTP: {exc}") from None
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(self.reader.read(READ_CHUNK), timeout)
                self.conn.receive_data(data)
                if not data and request is None and self.conn.their_state is h11.IDLE:
                    return None
                continue
            if isinstance(event, h11.Request):
                request = event
                length = dict(event.headers).get(b"content-length")
                if length is not None and length.isdigit() and int(length) > self.max_body:
                    raise BodyTooLarge(f"body of {int(length)} bytes over the limit")
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_body:
                    raise BodyTooLarge(f"body over the limit of {self.max_body} bytes")
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return Request(
                    request.method.decode("latin-1"),
                    request.target.decode("latin-1"),
                    _headers(request.headers),
                    b"".join(chunks),
                )
            elif isinstance(event, h11.ConnectionClosed):
                if request is not None:
                    raise HttpError("peer closed the connection mid-request")
                return None

    async def send(self, response: Response, close: bool = False) -> None:
        headers = [(k, v) for k, v in response.headers]
        headers.append(("Content-Length", str(len(response.body))))
        if close:
            headers.append(("Connection", "close"))
        try:
            data = self.conn.send(h11.Response(status_code=response.status, headers=headers))
            if response.body:
                data += self.conn.send(h11.Data(data=response.body))
            data += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise HttpError(f"cannot answer: {exc}") from None
        self.writer.write(data)
        await self.writer.drain()

    @property
    def must_close(self) -> bool:
        return self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ConnectionError):
            pass


class ClientConnection:
    """A keep-alive HTTP/1.1 client to one host:port; reconnects when needed."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"unsupported URL {url!r} (http:// only)")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
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
                f"{method} http://{self.host}:{self.port}: {type(exc).__name__} {exc}"
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
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
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
