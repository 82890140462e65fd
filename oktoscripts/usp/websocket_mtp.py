"""The controller's WebSocket MTP.

Agents connect to the controller (subprotocol ``v1.usp``, their Endpoint ID
in the bbf-usp-protocol extension, or ``?eid=`` in the URL for agents that
cannot send the extension), over TLS by default. The Endpoint ID an agent
claims is only believed when it is proven (``Admission``): by a client
certificate naming it (subjectAltName ``urn:bbf:usp:id:<eid>``), or by HTTP
Basic with a device credential bound to it (``DeviceBinding`` in devices/credentials.py). The
controller also dials agents that run their own WebSocket server (``dial``).
Either way one connection is one AgentLink; Records arrive as binary frames;
a frame that is not a Record closes the connection with 1003 (R-WS.16).

It is served by the controller process itself rather than the web process:
the link and the requests waiting on it live where the msg_id matching is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from oktoscripts import pki
from oktoscripts.usp import records, ws_extension
from oktoscripts.usp.admission import Admission
from oktoscripts.usp.controller import AgentLink, Controller, RateLimitedLog
from oktoscripts.usp.endpoint import endpoint_id_problem

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = records.MAX_RECORD_BYTES
DIAL_MAX_RETRY_S = 60.0


def claimed_endpoint_id(request: Request, query: str) -> tuple[str, str | None]:
    """The Endpoint ID a handshake claims (extension, else ``?eid=``) and what is
    wrong with the claim (None if nothing)."""
    from_extension = ws_extension.take_endpoint_id(request.headers)
    from_query = parse_qs(query).get("eid") or []
    if len(from_query) > 1 or (from_extension and from_query and from_query[0] != from_extension):
        return from_extension, "the handshake names more than one Endpoint ID"
    eid = from_extension or (from_query[0] if from_query else "")
    problem = endpoint_id_problem(eid)
    return eid, f"agent Endpoint ID: {problem}" if problem else None


class _ConnectionSource:
    """Records on one WebSocket connection come from its authenticated agent only."""

    def __init__(self, link: AgentLink, connection: ServerConnection) -> None:
        self.link = link
        self.connection = connection

    def link_for(self, from_id: str) -> AgentLink | None:
        return self.link if from_id == self.link.endpoint_id else None

    async def bad_record(self, reason: str) -> None:
        await self.connection.close(1003, reason[:120])


class WebSocketMtp:
    def __init__(
        self,
        controller: Controller,
        *,
        host: str,
        port: int,
        admission: Admission,
        tls: ssl.SSLContext | None = None,
        path: str = "/usp",
    ) -> None:
        self.controller = controller
        self.host, self.port, self.path = host, port, path
        self.admission = admission
        self.tls = tls
        self.server: Server | None = None
        self.refusals = RateLimitedLog()

    @property
    def scheme(self) -> str:
        return "wss" if self.tls is not None else "ws"

    async def start(self) -> None:
        self.server = await serve(
            self._handle,
            self.host,
            self.port,
            subprotocols=[ws_extension.SUBPROTOCOL],
            process_request=self._check_request,
            process_response=self._add_extension,
            max_size=MAX_FRAME_BYTES,
            compression=None,
            ping_interval=30,
            ping_timeout=30,
            ssl=self.tls,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        log.info(
            "usp websocket: listening on %s://%s:%s%s (authentication %s)",
            self.scheme,
            self.host,
            self.port,
            self.path,
            self.admission.mode,
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    # ---- handshake ----------------------------------------------------------------------

    async def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        url = urlsplit(request.path)
        if url.path.rstrip("/") != self.path.rstrip("/"):
            return connection.respond(HTTPStatus.NOT_FOUND, "no USP endpoint here\n")
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        if ws_extension.SUBPROTOCOL not in [p.strip() for p in offered.split(",")]:
            return connection.respond(
                HTTPStatus.BAD_REQUEST, "the v1.usp WebSocket subprotocol is required\n"
            )
        eid, problem = claimed_endpoint_id(request, url.query)
        if problem:
            return connection.respond(HTTPStatus.BAD_REQUEST, problem + "\n")
        ssl_object = connection.transport.get_extra_info("ssl_object")
        verdict = await self.admission.admit(
            eid, pki.peer_usp_endpoint_ids(ssl_object), request.headers.get("Authorization")
        )
        if not verdict.admitted:
            return self._refuse(connection, eid, verdict.status, verdict.detail)
        log.debug("usp websocket: %s admitted (%s)", eid, verdict.detail)
        connection.usp_endpoint_id = eid  # read by _handle once the handshake is done
        return None

    def _refuse(
        self, connection: ServerConnection, eid: str, status: HTTPStatus, detail: str
    ) -> Response:
        """Refuse a handshake: one warning with the claimed identity and where the
        attempt came from (a flood from one address is summed up every few seconds)."""
        host = connection.remote_address[0]
        self.refusals.warning(
            f"{host} {eid}", "usp websocket: refused %s claimed from %s: %s", eid, host, detail
        )
        if status == HTTPStatus.FORBIDDEN:
            return connection.respond(status, "not allowed to speak for this Endpoint ID\n")
        response = connection.respond(status, "authentication required\n")
        if self.admission.mode == "on":
            response.headers["WWW-Authenticate"] = 'Basic realm="oktoscripts USP"'
        return response

    def _add_extension(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            response.headers[ws_extension.HEADER] = ws_extension.extension_header(
                self.controller.endpoint_id
            )

    # ---- connections --------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        eid = connection.usp_endpoint_id
        host, port = connection.remote_address[:2]
        await serve_link(self.controller, connection, eid, {"peer": f"{host}:{port}"})

    async def dial(
        self,
        url: str,
        endpoint_id: str,
        *,
        retry_s: float = 1.0,
        max_retry_s: float = DIAL_MAX_RETRY_S,
    ) -> None:
        """Keep a connection to an agent that runs a WebSocket server (until cancelled).
        Every failure (refused connection, an HTTP status instead of the upgrade,
        a TLS or protocol error) is logged and tried again, waiting ``retry_s``
        doubling up to ``max_retry_s``; a connection that was up starts afresh."""
        wait = retry_s
        while True:
            try:
                async with ws_connect(
                    url,
                    subprotocols=[ws_extension.SUBPROTOCOL],
                    compression=None,
                    additional_headers={
                        ws_extension.HEADER: ws_extension.extension_header(
                            self.controller.endpoint_id
                        )
                    },
                    create_connection=ws_extension.UspClientConnection,
                    max_size=MAX_FRAME_BYTES,
                ) as connection:
                    announced = connection.peer_endpoint_id
                    if announced and announced != endpoint_id:
                        log.warning(
                            "usp websocket: %s answers as %s, not as %s: not used",
                            url,
                            announced,
                            endpoint_id,
                        )
                    else:
                        wait = retry_s
                        await serve_link(self.controller, connection, endpoint_id, {"url": url})
                        log.info(
                            "usp websocket: connection to agent %s at %s ended; dialling again",
                            endpoint_id,
                            url,
                        )
            except asyncio.CancelledError:
                raise
            except InvalidStatus as exc:
                log.warning(
                    "usp websocket: agent %s at %s refused the connection with HTTP %s; "
                    "again in %.0f s",
                    endpoint_id,
                    url,
                    exc.response.status_code,
                    wait,
                )
            except Exception as exc:  # noqa: BLE001 - whatever it was, dial again later
                log.warning(
                    "usp websocket: cannot reach agent %s at %s: %s; again in %.0f s",
                    endpoint_id,
                    url,
                    exc or type(exc).__name__,
                    wait,
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, max_retry_s)


async def serve_link(
    controller: Controller, connection: object, endpoint_id: str, address: dict
) -> None:
    """Run one agent connection until it closes: its Records go to the controller."""

    async def send(data: bytes) -> None:
        await connection.send(data)

    async def close() -> None:
        await connection.close(1000, "replaced by a newer connection of the same agent")

    link = AgentLink(endpoint_id, "websocket", send, address, close)
    source = _ConnectionSource(link, connection)
    controller.agent_connected(link)
    reason = ""
    try:
        async for frame in connection:
            if isinstance(frame, str):
                await source.bad_record("text frame: USP Records travel in binary frames")
                break
            await controller.on_record(frame, source)
    except ConnectionClosed as exc:
        reason = str(exc)
    finally:
        controller.agent_disconnected(link, reason)
        with contextlib.suppress(Exception):
            await connection.close()
