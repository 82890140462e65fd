"""TLS on the USP MTPs (issue 13, item 3), with real handshakes and
certificates from a CA generated for the test: the WebSocket MTP over TLS,
where a client certificate naming the Endpoint ID is the whole proof (no
password, as obuspa connects) and a certificate of another agent or of
another CA gets nowhere; and MQTT over TLS to the embedded broker.

Each test has its controller to itself: two controllers on one NATS prefix
would share the requests of scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import aiomqtt
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from oktoscripts.usp import mqtt_topics, ws_extension

from .conftest import SESSION, WS_PASSWORD, WS_USER, certificate_files, start_env, stop_env
from .test_usp_trust import basic, get_model, refusals, until

# ---- 3. WebSocket over TLS: the client certificate proves the Endpoint ID ----------------


@pytest.fixture
async def wss(authority, nats_url, mongo_db, monkeypatch):
    """A controller serving the WebSocket MTP over TLS (no MQTT), with the
    certificate of the platform's data directory."""
    monkeypatch.setenv("OKTOSCRIPTS_DATA_DIR", str(authority[2]))
    for name in ("OKTOSCRIPTS_TLS_CERT", "OKTOSCRIPTS_TLS_KEY", "OKTOSCRIPTS_TLS_CA"):
        monkeypatch.delenv(name, raising=False)
    env = await start_env("wss", nats_url=nats_url, mongo_db=mongo_db, mqtt_url="", ws_tls=True)
    try:
        yield env
    finally:
        await stop_env(env)


def wss_url(env) -> str:
    assert env.process.websocket.scheme == "wss"
    return f"wss://127.0.0.1:{env.process.websocket.port}/usp"


async def test_an_agent_with_a_client_certificate_needs_no_password(wss, authority, tmp_path):
    ca = str(authority[0].ca_path)
    eid = wss.agent_config("cert1").endpoint_id
    cert, key = certificate_files(tmp_path, authority[0], eid, "cert1")
    agent = await wss.start_agent(
        "cert1",
        mtp="websocket",
        ws_url=wss_url(wss),
        username="",
        password="",
        tls_ca=ca,
        tls_cert=cert,
        tls_key=key,
    )
    answer = await get_model(wss, agent.config.endpoint_id)
    assert answer == {"Device.DeviceInfo.ModelName": "USP-GW-1"}, answer


async def test_a_certificate_of_another_agent_is_refused(wss, authority, tmp_path, caplog):
    from oktoscripts import pki

    victim = wss.agent_config("cert-victim").endpoint_id
    cert, key = certificate_files(tmp_path, authority[0], f"os::rogue{SESSION}", "rogue")
    context = pki.client_context(authority[0].ca_path, cert, key)
    caplog.clear()
    for claim in (
        {"uri": f"?eid={victim}"},
        {"headers": {ws_extension.HEADER: ws_extension.extension_header(victim)}},
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(
                wss_url(wss) + claim.get("uri", ""),
                ssl=context,
                subprotocols=["v1.usp"],
                additional_headers=claim.get("headers", {}),
            ):
                pass
        assert refused.value.response.status_code == 403
    assert victim not in wss.controller.links
    assert "rogue" in refusals(caplog, victim)[0].getMessage()


async def test_a_certificate_of_another_ca_fails_the_tls_handshake(wss, authority, tmp_path):
    from oktoscripts import pki

    other = pki.Authority.ensure(tmp_path / "other-ca")
    eid = wss.agent_config("other-ca").endpoint_id
    cert, key = certificate_files(tmp_path, other, eid, "other")
    context = pki.client_context(authority[0].ca_path, cert, key)
    with pytest.raises((ssl.SSLError, ConnectionError, InvalidMessage, InvalidStatus)) as failed:
        async with ws_connect(
            wss_url(wss) + f"?eid={eid}", ssl=context, subprotocols=["v1.usp"], open_timeout=5
        ):
            pass
    assert not isinstance(failed.value, InvalidStatus), "the TLS handshake went through"
    assert eid not in wss.controller.links


async def test_a_client_that_does_not_trust_the_platform_ca_cannot_connect(wss):
    from oktoscripts import pki

    eid = wss.agent_config("no-trust").endpoint_id
    with pytest.raises(ssl.SSLCertVerificationError):
        async with ws_connect(
            wss_url(wss) + f"?eid={eid}",
            ssl=pki.client_context(),
            subprotocols=["v1.usp"],
            open_timeout=5,
        ):
            pass


async def test_without_certificate_a_bound_credential_is_still_enough(wss, authority):
    from oktoscripts import pki

    context = pki.client_context(authority[0].ca_path)
    eid = wss.agent_config("basic-over-tls").endpoint_id
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(wss_url(wss) + f"?eid={eid}", ssl=context, subprotocols=["v1.usp"]):
            pass
    assert refused.value.response.status_code == 401
    async with ws_connect(
        wss_url(wss) + f"?eid={eid}",
        ssl=context,
        subprotocols=["v1.usp"],
        additional_headers={"Authorization": basic(WS_USER, WS_PASSWORD)},
        create_connection=ws_extension.UspClientConnection,
    ):
        await until(lambda: eid in wss.controller.links)


async def test_plain_websocket_to_the_tls_port_gets_nowhere(wss):
    eid = wss.agent_config("plain").endpoint_id
    url = f"ws://127.0.0.1:{wss.process.websocket.port}/usp?eid={eid}"
    with pytest.raises((ConnectionError, InvalidMessage, InvalidStatus, TimeoutError, OSError)):
        async with ws_connect(
            url,
            subprotocols=["v1.usp"],
            open_timeout=5,
            additional_headers={"Authorization": basic(WS_USER, WS_PASSWORD)},
        ):
            pass
    assert eid not in wss.controller.links


async def test_cert_mode_refuses_passwords():
    from oktoscripts.usp.admission import Admission

    async def always_ok(username, password, eid):
        return "ok"

    admission = Admission("cert", always_ok)
    verdict = await admission.admit("os::a", [], basic("u", "p"))
    assert verdict.status == 401
    assert (await admission.admit("os::a", ["os::a"], None)).admitted


# ---- MQTT over TLS to the embedded broker -------------------------------------------------


@pytest.fixture(scope="module")
def tls_broker(authority, tmp_path_factory):
    from oktoscripts.launcher.embedded.services import EmbeddedServices

    files = authority[1]
    services = EmbeddedServices(tmp_path_factory.mktemp("mqtts"))
    services.start_nats(mqtt_tls=(files.cert, files.key))
    yield services.nats
    services.stop()


async def test_mqtt_over_tls_to_the_embedded_broker(
    tls_broker, authority, nats_url, mongo_db, tmp_path
):
    from oktoscripts import pki

    assert tls_broker.mqtt_url.startswith("mqtts://")
    env = await start_env(
        "mqtts",
        nats_url=nats_url,
        mongo_db=mongo_db,
        mqtt_url="",
        broker=tls_broker,
        mqtt_ca=str(authority[0].ca_path),
    )
    try:
        address = mqtt_topics.broker_address(tls_broker.mqtt_url).without_credentials()
        env.mqtt_url = mqtt_topics.broker_url(address)
        agent = await env.start_agent("tls1", mtp="mqtt", tls_ca=str(authority[0].ca_path))
        assert (await get_model(env, agent.config.endpoint_id))[
            "Device.DeviceInfo.ModelName"
        ] == "USP-GW-1"
        # A client that checks the broker against another CA does not get through.
        other = pki.Authority.ensure(tmp_path / "other")
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                address.host,
                address.port,
                username=WS_USER,
                password=WS_PASSWORD,
                identifier=env.agent_config("tls2").endpoint_id,
                tls_context=pki.client_context(other.ca_path),
                timeout=5,
            ):
                pass
        # Nor does plain MQTT on the TLS listener.
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                address.host,
                address.port,
                username=WS_USER,
                password=WS_PASSWORD,
                timeout=3,
                identifier=env.agent_config("tls3").endpoint_id,
            ):
                pass
    finally:
        with contextlib.suppress(Exception):
            await stop_env(env)


async def test_the_simulated_fleet_connects_over_wss_with_certificates(
    wss, authority, settings, usp_names
):
    """What ``up``'s ``simulate --usp N --usp-mtp websocket`` does on the defaults."""
    from oktoscripts.sim.usp_fleet import run_usp_fleet

    settings.DATA_DIR = authority[2]
    settings.USP_ENDPOINT_ID = wss.controller.endpoint_id
    settings.USP_WS_HOST, settings.USP_WS_PORT = "127.0.0.1", wss.process.websocket.port
    settings.USP_WS_TLS = True
    settings.MQTT_URL = ""
    prefix = f"wssfleet{usp_names['SESSION']}"
    fleet = asyncio.ensure_future(run_usp_fleet(2, mtp="websocket", prefix=prefix))
    try:
        for index in (1, 2):
            await wss.wait_device(
                f"os::00D09E-{prefix}-{index:05d}", lambda d: d["status"] == 2 and d["model"]
            )
    finally:
        fleet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fleet
    assert (authority[2] / "sim" / "usp-certs").is_dir()
