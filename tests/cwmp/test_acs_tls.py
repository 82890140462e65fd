"""The ACS over HTTPS and Connection Requests to https:// URLs, with real TLS
handshakes and certificates of the installation's CA (and of a stranger's)."""

import asyncio
import logging
import ssl
from dataclasses import replace

import pytest

from oktoscripts import pki
from oktoscripts.cwmp import client
from oktoscripts.cwmp.app import start_acs
from oktoscripts.cwmp.soap import RpcRequest

from .conftest import eventually


@pytest.fixture
async def tls_acs(acs_config, nats_url, mongo_uri, db_name, cpe_credential):
    app = await start_acs(
        replace(acs_config, tls_port=0),
        nats_url=nats_url,
        mongo_uri=mongo_uri,
        db_name=db_name,
    )
    yield app
    await app.stop()


def stranger(tmp_path):
    """A CA nobody configured the platform or the CPEs to trust."""
    return pki.Authority.ensure(tmp_path / "stranger-ca")


def platform_ca() -> str:
    return str(pki.tls_files().ca)


def server_context(authority, tmp_path, name):
    """A TLS server context with a certificate for 127.0.0.1 from ``authority``."""
    cert, key = authority.issue(name, hostnames=["127.0.0.1"], server=True)
    (tmp_path / f"{name}.pem").write_bytes(cert)
    (tmp_path / f"{name}.key").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
    return context


async def test_cpes_talk_https_to_the_acs_trusting_the_platform_ca(
    tls_acs, fleet_factory, mongo_db
):
    for host in ("127.0.0.1", "localhost"):
        fleet = await fleet_factory(
            2,
            run=False,
            acs_url=f"https://{host}:{tls_acs.tls_port}/acs",
            ca_file=platform_ca(),
        )
        for cpe in fleet.cpes:
            assert await cpe.session()
            assert await cpe.session()  # digest again on a new TLS connection
            assert mongo_db.devices.find_one({"serial": cpe.serial})["status"] == 2


async def test_a_cpe_trusting_another_ca_does_not_talk_to_the_acs(
    tls_acs, fleet_factory, mongo_db, tmp_path, caplog
):
    fleet = await fleet_factory(
        1,
        run=False,
        acs_url=f"https://127.0.0.1:{tls_acs.tls_port}/acs",
        ca_file=str(stranger(tmp_path).ca_path),
    )
    with caplog.at_level(logging.INFO):
        assert not await fleet.cpes[0].session()
    assert any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)
    assert mongo_db.devices.find_one({"serial": fleet.cpes[0].serial}) is None
    # plain HTTP to the TLS port, and TLS to the plain port: refused, nothing breaks
    plain = await fleet_factory(1, run=False, acs_url=f"http://127.0.0.1:{tls_acs.tls_port}/acs")
    assert not await plain.cpes[0].session()
    wrong = await fleet_factory(
        1, run=False, acs_url=f"https://127.0.0.1:{tls_acs.port}/acs", ca_file=platform_ca()
    )
    assert not await wrong.cpes[0].session()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    good = await fleet_factory(
        1, run=False, acs_url=f"https://127.0.0.1:{tls_acs.tls_port}/acs", ca_file=platform_ca()
    )
    assert await good.cpes[0].session()


async def test_a_handshake_that_never_ends_is_dropped(
    acs_config, nats_url, mongo_uri, db_name, monkeypatch
):
    from oktoscripts.cwmp import tls

    assert tls.HANDSHAKE_TIMEOUT_S <= 10
    monkeypatch.setattr(tls, "HANDSHAKE_TIMEOUT_S", 1.0)
    app = await start_acs(
        replace(acs_config, tls_port=0), nats_url=nats_url, mongo_uri=mongo_uri, db_name=db_name
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.tls_port)
        writer.write(b"\x16\x03\x01")  # the start of a ClientHello, and nothing more
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await app.stop()


async def gpv(nc, cpe):
    name = cpe.dm.root + "DeviceInfo.SoftwareVersion"
    return await client.call(
        nc, cpe.serial, RpcRequest("GetParameterValues", names=[name]), timeout_s=15
    )


async def test_connection_requests_to_https_urls(tls_acs, fleet_factory, nc, tmp_path):
    # A CPE whose Connection Request server has a certificate of the platform's CA
    platform = pki.Authority.ensure(pki.pki_dir())
    fleet = await fleet_factory(
        1,
        run=False,
        acs_url=f"http://127.0.0.1:{tls_acs.port}/acs",
        cr_ssl=server_context(platform, tmp_path, "cr-platform"),
    )
    cpe = fleet.cpes[0]
    assert fleet.cr_server.base_url.startswith("https://")
    cpe.start()  # bootstrap, then it answers Connection Requests
    await eventually(lambda: fleet.stats.sessions_ok == 1)
    answer = await gpv(nc, cpe)
    assert answer["ok"], answer
    assert fleet.stats.connection_requests >= 1


async def test_connection_requests_check_the_cpe_certificate(
    acs, acs_config, nats_url, mongo_uri, db_name, fleet_factory, nc, tmp_path
):
    # The CPE's Connection Request certificate is from a CA the ACS does not trust:
    # the CPE is never woken (`acs`, the default ACS, runs meanwhile)...
    fleet = await fleet_factory(
        1,
        run=False,
        acs_url=f"http://127.0.0.1:{acs.port}/acs",
        cr_ssl=server_context(stranger(tmp_path), tmp_path, "cr-stranger"),
    )
    cpe = fleet.cpes[0]
    cpe.start()
    await eventually(lambda: fleet.stats.sessions_ok == 1)
    answer = await gpv(nc, cpe)
    assert answer["error"]["error_code"] == "503"
    assert "CERTIFICATE_VERIFY_FAILED" in answer["error"]["error_message"]
    assert fleet.stats.connection_requests == 0
    # ... until OKTOSCRIPTS_ACS_CR_CA names that CA.
    await acs.stop()
    trusting = await start_acs(
        replace(acs_config, cr_ca=str(stranger(tmp_path).ca_path)),
        nats_url=nats_url,
        mongo_uri=mongo_uri,
        db_name=db_name,
    )
    try:
        cpe.options.acs_url = f"http://127.0.0.1:{trusting.port}/acs"
        assert (await gpv(nc, cpe))["ok"]
        assert fleet.stats.connection_requests == 1
    finally:
        await trusting.stop()
