"""Connection Requests against small real HTTP servers: none, Basic, Digest, failures."""

import asyncio
import time

import pytest

from oktoscripts.cwmp.connreq import ConnectionRequestFailed, connection_request
from oktoscripts.cwmp.http11 import Response, ServerConnection
from oktoscripts.cwmp.httpauth import (
    NonceIssuer,
    basic_header,
    challenge,
    check_digest,
    ha1,
    parse_auth_params,
    split_scheme,
)


async def serve(answer):
    """An HTTP server on a free port answering each request with ``answer(request)``."""
    seen = []

    async def handle(reader, writer):
        http = ServerConnection(reader, writer, 4096)
        try:
            while (request := await http.next_request(5)) is not None:
                seen.append(request)
                await http.send(answer(request))
        except Exception:  # noqa: BLE001 - the client hung up
            pass
        finally:
            await http.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/cr", seen


async def test_no_authentication():
    server, url, seen = await serve(lambda r: Response(204))
    async with server:
        await connection_request(url)
    assert len(seen) == 1 and seen[0].method == "GET"


async def test_basic():
    expected = basic_header("cr", "pw")

    def answer(request):
        if request.headers.get("authorization") == expected:
            return Response(200)
        return Response(401, [("WWW-Authenticate", 'Basic realm="cpe"')])

    server, url, seen = await serve(answer)
    async with server:
        await connection_request(url, "cr", "pw")
        with pytest.raises(ConnectionRequestFailed, match="401"):
            await connection_request(url, "cr", "wrong")


async def test_digest():
    nonces = NonceIssuer()

    def answer(request):
        scheme, rest = split_scheme(request.headers.get("authorization", ""))
        params = parse_auth_params(rest) if scheme == "digest" else {}
        if params and check_digest(params, "GET", ha1("cr", "cpe", "pw")):
            assert params["uri"] == "/cr" and params["qop"] == "auth"
            return Response(200)
        return Response(401, [("WWW-Authenticate", challenge("cpe", nonces.issue()))])

    server, url, seen = await serve(answer)
    async with server:
        await connection_request(url, "cr", "pw")
        assert len(seen) == 2  # challenge, then the answer on the same connection
        with pytest.raises(ConnectionRequestFailed, match="401"):
            await connection_request(url, "cr", "nope")


async def test_silent_cpe_times_out_in_about_two_seconds():
    async def silent(reader, writer):
        await asyncio.sleep(10)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    async with server:
        started = time.monotonic()
        with pytest.raises(ConnectionRequestFailed, match="TimeoutError"):
            await connection_request(url)
        assert time.monotonic() - started < 5


async def test_refused_and_bad_urls():
    with pytest.raises(ConnectionRequestFailed):
        await connection_request("http://127.0.0.1:9/")  # nothing listens
    with pytest.raises(ConnectionRequestFailed, match="http:// or https:// only"):
        await connection_request("ftp://127.0.0.1/")
    with pytest.raises(ConnectionRequestFailed, match="no ConnectionRequestURL"):
        await connection_request("")
