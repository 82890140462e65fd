"""The ``bbf-usp-protocol`` WebSocket extension of TR-369 (R-WS.10a, R-WS.11a).

Each side names its Endpoint ID in the ``eid`` parameter of
Sec-WebSocket-Extensions. The extension does not change frames: it only
carries Endpoint IDs through the handshake. Endpoint IDs hold ":" which is
not an RFC 6455 token, so the websockets library cannot parse the item; we
take it out of the headers ourselves before the library negotiates the
other extensions (permessage-deflate).
"""

from __future__ import annotations

from websockets.asyncio.client import ClientConnection
from websockets.datastructures import Headers

NAME = "bbf-usp-protocol"
SUBPROTOCOL = "v1.usp"
HEADER = "Sec-WebSocket-Extensions"


def extension_header(endpoint_id: str) -> str:
    return f'{NAME}; eid="{endpoint_id}"'


def take_endpoint_id(headers: Headers) -> str:
    """Remove the bbf-usp-protocol item from ``headers``; return its eid ("" if none)."""
    eid, kept = "", []
    for value in headers.get_all(HEADER):
        for item in value.split(","):
            name, _, params = item.strip().partition(";")
            if name.strip().lower() != NAME:
                if item.strip():
                    kept.append(item.strip())
                continue
            for param in params.split(";"):
                key, _, raw = param.strip().partition("=")
                if key.strip().lower() == "eid":
                    eid = raw.strip().strip('"')
    if HEADER in headers:
        del headers[HEADER]
    if kept:
        headers[HEADER] = ", ".join(kept)
    return eid


class UspClientConnection(ClientConnection):
    """A websockets client connection that accepts the server's bbf-usp-protocol
    answer and keeps the server's Endpoint ID in ``peer_endpoint_id``."""

    def __init__(self, protocol, *args, **kwargs) -> None:  # noqa: ANN001 - library types
        self.peer_endpoint_id = ""
        negotiate = protocol.process_extensions

        def process_extensions(headers: Headers) -> list:
            self.peer_endpoint_id = take_endpoint_id(headers)
            return negotiate(headers)

        protocol.process_extensions = process_extensions
        super().__init__(protocol, *args, **kwargs)
