"""Connection Requests: waking a CPE so it opens a session with the ACS.

An HTTP GET to the CPE's ConnectionRequestURL with a short timeout. A 401 is
answered once with the connection-request credentials (Digest, or Basic when
that is what the CPE asks for); some CPEs need no authentication at all.
200 and 204 mean the CPE will call. An https:// URL is reached over TLS, the
CPE's certificate checked with ``ssl_context`` (tls.py).
"""

from __future__ import annotations

import logging
import ssl

from oktoscripts.cwmp.http11 import ClientConnection, HttpError
from oktoscripts.cwmp.httpauth import answer_challenge

log = logging.getLogger(__name__)

TIMEOUT_S = 2.0


class ConnectionRequestFailed(Exception):
    pass


async def connection_request(
    url: str,
    username: str = "",
    password: str = "",
    timeout: float = TIMEOUT_S,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Wake the CPE; ConnectionRequestFailed says why it did not work."""
    if not url:
        raise ConnectionRequestFailed("the device has no ConnectionRequestURL")
    try:
        client = ClientConnection(url, timeout=timeout, ssl_context=ssl_context)
    except ValueError as exc:
        raise ConnectionRequestFailed(str(exc)) from None
    try:
        response = await client.request("GET")
        if response.status == 401:
            challenge = response.header("WWW-Authenticate")
            auth = answer_challenge(challenge, username, password, "GET", client.path)
            if auth is None:
                raise ConnectionRequestFailed(f"unsupported challenge {challenge!r}")
            response = await client.request("GET", [("Authorization", auth)])
        if response.status not in (200, 204):
            raise ConnectionRequestFailed(f"{url} answered HTTP {response.status}")
    except HttpError as exc:
        raise ConnectionRequestFailed(str(exc)) from None
    finally:
        await client.close()
