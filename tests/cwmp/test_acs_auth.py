"""Authentication at the ACS port, tried from outside with raw connections:
refused on the headers before any body is read, Digest answers good once,
sessions bound to the credential that opened them."""

import asyncio
import logging

import pytest

from oktoscripts.cwmp.http11 import ClientConnection
from oktoscripts.cwmp.httpauth import answer_challenge, basic_header

from .raw import XML, auth_of, inform

MB = 1024 * 1024


async def raw_post_head(port, length, extra=b""):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /acs HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml\r\n"
        + extra
        + f"Content-Length: {length}\r\n\r\n".encode()
    )
    await writer.drain()
    return reader, writer


async def test_unauthenticated_large_body_refused_before_it_is_read(acs):
    reader, writer = await raw_post_head(acs.port, MB)
    writer.write(b"<" * 10_000)  # the start of a 1 MB body, and no more
    await writer.drain()
    # The 401 comes while most of the body is still unsent: nothing waited for it.
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 401 ")
    assert b'www-authenticate: digest realm="oktoscripts"' in head.lower()
    assert b"connection: close" in head.lower()
    # ... and the ACS closes the connection soon, whatever the client keeps sending.
    closed = False
    try:
        for _ in range(200):
            writer.write(b"<" * 65536)
            await asyncio.wait_for(writer.drain(), 5)
            await asyncio.sleep(0.02)
    except (ConnectionError, OSError):
        closed = True
    if not closed:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_unauthenticated_short_body_keeps_the_connection_for_the_handshake(
    url, fleet_factory
):
    fleet = await fleet_factory(1, run=False)
    cpe = fleet.cpes[0]
    conn = ClientConnection(url)
    first = await conn.request("POST", [XML], inform(cpe.serial, oui=cpe.options.oui))
    assert first.status == 401 and first.header("Connection") != "close"
    writer = conn.writer
    auth = answer_challenge(
        first.header("WWW-Authenticate"), cpe.username, cpe.password, "POST", "/acs"
    )
    second = await conn.request(
        "POST", [XML, ("Authorization", auth)], inform(cpe.serial, oui=cpe.options.oui)
    )
    assert second.status == 200 and conn.writer is writer  # the same TCP connection
    await conn.close()


async def challenge_of(url):
    conn = ClientConnection(url)
    response = await conn.request("POST", [XML], b"")
    await conn.close()
    assert response.status == 401
    return response.header("WWW-Authenticate")


async def test_a_digest_answer_is_good_once(url, fleet_factory, caplog):
    fleet = await fleet_factory(1, run=False)
    cpe = fleet.cpes[0]
    challenge = await challenge_of(url)
    body = inform(cpe.serial, oui=cpe.options.oui)
    header = answer_challenge(challenge, cpe.username, cpe.password, "POST", "/acs", nc=1)

    first = ClientConnection(url)
    assert (await first.request("POST", [XML, ("Authorization", header)], body)).status == 200
    await first.close()
    # The same header captured and sent again from another connection
    replay = ClientConnection(url)
    with caplog.at_level(logging.WARNING, logger="oktoscripts.cwmp.acs"):
        refused = await replay.request("POST", [XML, ("Authorization", header)], body)
    await replay.close()
    assert refused.status == 401 and "stale=true" in refused.header("WWW-Authenticate")
    assert any("replayed" in r.getMessage() for r in caplog.records)
    # The CPE itself goes on with the same nonce and the next nonce count
    header = answer_challenge(challenge, cpe.username, cpe.password, "POST", "/acs", nc=2)
    again = ClientConnection(url)
    assert (await again.request("POST", [XML, ("Authorization", header)], body)).status == 200
    await again.close()


async def test_digest_nonces_expire(url, acs, fleet_factory):
    fleet = await fleet_factory(1, run=False)
    cpe = fleet.cpes[0]
    acs.acs.auth.nonces.lifetime = 1.0
    challenge = await challenge_of(url)
    await asyncio.sleep(2.1)
    header = answer_challenge(challenge, cpe.username, cpe.password, "POST", "/acs", nc=1)
    conn = ClientConnection(url)
    late = await conn.request(
        "POST", [XML, ("Authorization", header)], inform(cpe.serial, oui=cpe.options.oui)
    )
    await conn.close()
    assert late.status == 401 and "stale=true" in late.header("WWW-Authenticate")


async def test_cpes_that_reuse_nc_1_still_get_their_sessions(fleet_factory):
    # Some CPEs answer one challenge and send nc=00000001 with it ever after:
    # each new connection then costs them one more challenge, nothing else.
    fleet = await fleet_factory(1, run=False, quirk_digest_nc_always_1=True)
    cpe = fleet.cpes[0]
    for _ in range(3):
        assert await cpe.session()


@pytest.mark.parametrize("with_other_credential", [False, True])
async def test_a_session_cookie_acts_only_for_the_credential_that_opened_it(
    with_other_credential, url, acs, fleet_factory, credential_store, caplog
):
    fleet = await fleet_factory(1, run=False)
    victim = fleet.cpes[0]
    own = ClientConnection(url)
    opened = await own.request(
        "POST", [XML, auth_of(victim)], inform(victim.serial, oui=victim.options.oui)
    )
    cookie = opened.header("Set-Cookie").split(";")[0]
    assert victim.serial in acs.acs.sessions.by_serial

    thief = ClientConnection(url)
    headers = [XML, ("Cookie", cookie)]
    if with_other_credential:
        await asyncio.to_thread(credential_store.create_or_update, "evilcpe", "evil-pw")
        headers.append(("Authorization", basic_header("evilcpe", "evil-pw")))
    with caplog.at_level(logging.WARNING, logger="oktoscripts.cwmp.acs"):
        stolen = await thief.request("POST", headers, b"")  # "nothing more": would end it
    await thief.close()
    if with_other_credential:
        assert stolen.status == 204  # an empty POST outside any session of its own
        assert any("presented the cookie" in r.getMessage() for r in caplog.records)
    else:
        assert stolen.status == 401
    # the victim's session is untouched and ends as the victim decides
    assert victim.serial in acs.acs.sessions.by_serial
    assert (await own.request("POST", [XML], b"")).status == 204
    assert victim.serial not in acs.acs.sessions.by_serial
    await own.close()


async def test_a_password_guesser_is_refused_without_checking(url, acs, fleet_factory, caplog):
    fleet = await fleet_factory(1, run=False, auth="basic")
    cpe = fleet.cpes[0]
    body = inform(cpe.serial, oui=cpe.options.oui)
    guess = ("Authorization", basic_header(cpe.username, "guess"))

    # Guesses sent all at once are all counted: no more than the limit is checked.
    async def guessing():
        conn = ClientConnection(url)
        response = await conn.request("POST", [XML, guess], body)
        await conn.close()
        return response.status

    checked = []
    real_verify = acs.acs.backend.credentials.verify_basic
    acs.acs.backend.credentials.verify_basic = lambda *a: checked.append(a) or real_verify(*a)
    # Many CPEs behind one address authenticating at once are no guesser.
    others = await fleet_factory(acs.acs.auth.throttle.limit + 10, run=False)
    assert all(await asyncio.gather(*(other.session() for other in others.cpes)))
    with caplog.at_level(logging.WARNING, logger="oktoscripts.cwmp.acs"):
        statuses = await asyncio.gather(
            *(guessing() for _ in range(3 * acs.acs.auth.throttle.limit))
        )
        # From that address even the right password is not looked at for a while ...
        assert not await cpe.session()
    # (one more may be checked: the next one starts while a failure is being counted)
    assert set(statuses) == {401} and len(checked) <= acs.acs.auth.throttle.limit + 1
    assert sum("not checked until" in r.getMessage() for r in caplog.records) == 1
    # ... and is again once the window has passed.
    acs.acs.auth.throttle.window_s = 0.2
    await asyncio.sleep(0.3)
    assert await cpe.session()


def test_guessers_count_per_address_and_ipv6_per_64():
    from oktoscripts.cwmp.throttle import FailureThrottle

    throttle = FailureThrottle(limit=2)
    throttle.failed("2001:db8:1:2::10")
    assert not throttle.blocked("2001:db8:1:2::ffff")
    throttle.failed("2001:db8:1:2::ffff")
    assert throttle.blocked("2001:db8:1:2:a::1")  # the same /64
    assert throttle.first_refusal("2001:db8:1:2::1")
    assert not throttle.first_refusal("2001:db8:1:2::1")  # said once per window
    assert not throttle.blocked("2001:db8:1:3::1") and not throttle.blocked("192.0.2.1")
