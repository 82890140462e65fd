"""Agents are who they say they are (issue 13, items 1-3 for USP), tried as an
attacker would, over real sockets, real TLS and real brokers:

- WebSocket MTP: a credential of another device is refused at the
  handshake, logged once, and the real agent keeps its session;
- MQTT: the embedded broker lets no anonymous client in, lets an agent use
  its own topics only, and the controller drops a Record whose from_id is not
  the agent of the topic it came on: a forged answer never reaches a script.

TLS (wss:// with client certificates, mqtts://) is in test_usp_tls.py.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import aiomqtt
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from oktoscripts.usp import messages, mqtt_topics, records, ws_extension

from .conftest import SESSION, WS_PASSWORD, WS_USER

GET_MODEL = '{"body": {"request": {"get": {"param_paths": ["Device.DeviceInfo.ModelName"]}}}}'
EVIL_USER, EVIL_PASSWORD = f"evilcpe{SESSION}", "evil-secret"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


async def get_model(env, sn: str, wall: float = 30.0):
    outcome, _ = await env.run(
        "return send_usp_message(args.sn, args.p)", args={"sn": sn, "p": GET_MODEL}, wall=wall
    )
    assert outcome.status == "succeeded", outcome.error
    return outcome.result


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


def refusals(caplog, eid: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "refused" in r.getMessage() and eid in r.getMessage()
    ]


@pytest.fixture(scope="module")
async def evil(mongo_db):
    """A credential made for another device (``evilcpe``), with its own binding."""
    from oktoscripts.devices.credentials import CredentialStore

    store = CredentialStore(mongo_db)
    await asyncio.to_thread(store.create_or_update, EVIL_USER, EVIL_PASSWORD)
    await asyncio.to_thread(store.bind, EVIL_USER, [f"os::evil{SESSION}"])
    return EVIL_USER


# ---- 1. WebSocket: a credential speaks only for its own device ---------------------------


@pytest.mark.parametrize("claim", ["query", "extension"])
async def test_a_credential_of_another_device_cannot_claim_an_agent(usp311, evil, caplog, claim):
    victim = await usp311.start_agent(f"victim-ws-{claim}", mtp="websocket")
    eid = victim.config.endpoint_id
    link = usp311.controller.links[eid]
    url = f"ws://127.0.0.1:{usp311.process.websocket.port}/usp"
    headers = {"Authorization": basic(EVIL_USER, EVIL_PASSWORD)}
    if claim == "query":
        url += f"?eid={eid}"
    else:
        headers[ws_extension.HEADER] = ws_extension.extension_header(eid)
    caplog.clear()
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, subprotocols=["v1.usp"], additional_headers=headers):
            pass
    assert refused.value.response.status_code == 403
    # Logged once, with the claimed identity and where the attempt came from.
    [record] = refusals(caplog, eid)
    assert "127.0.0.1" in record.getMessage() and EVIL_USER in record.getMessage()
    # The real agent keeps its session, stays online, and answers.
    await asyncio.sleep(0.3)
    assert usp311.controller.links[eid] is link
    device = await usp311.wait_device(eid, lambda d: True)
    assert device["status"] == 2
    assert await get_model(usp311, eid) == {"Device.DeviceInfo.ModelName": "USP-GW-1"}


async def test_the_same_credential_is_let_in_for_its_own_device(usp311, evil):
    """The control: the evil credential is a working one, for its own Endpoint ID."""
    url = f"ws://127.0.0.1:{usp311.process.websocket.port}/usp?eid=os::evil{SESSION}"
    async with ws_connect(
        url,
        subprotocols=["v1.usp"],
        additional_headers={"Authorization": basic(EVIL_USER, EVIL_PASSWORD)},
        create_connection=ws_extension.UspClientConnection,
    ) as ws:
        assert ws.peer_endpoint_id == usp311.controller.endpoint_id


async def test_a_handshake_naming_two_endpoint_ids_is_refused(usp311):
    url = f"ws://127.0.0.1:{usp311.process.websocket.port}/usp?eid=os::t{SESSION}-x"
    headers = {
        ws_extension.HEADER: ws_extension.extension_header(f"os::t{SESSION}-y"),
        "Authorization": basic(WS_USER, WS_PASSWORD),
    }
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, subprotocols=["v1.usp"], additional_headers=headers):
            pass
    assert refused.value.response.status_code == 400


# ---- 2. MQTT: no anonymous client, each agent on its own topics ---------------------------


def login(env, eid: str, username: str | None = WS_USER, password: str | None = WS_PASSWORD):
    address = mqtt_topics.broker_address(env.mqtt_url)
    return aiomqtt.Client(
        address.host, address.port, username=username, password=password, identifier=eid, timeout=5
    )


@pytest.mark.parametrize(
    "who", ["anonymous", "wrong password", "unbound client id", "unknown user"]
)
async def test_the_embedded_broker_refuses_logins_that_prove_nothing(usp311, evil, who):
    eid = usp311.agent_config("login").endpoint_id
    client = {
        "anonymous": login(usp311, eid, None, None),
        "wrong password": login(usp311, eid, WS_USER, "wrong"),
        # A right password, for an Endpoint ID its credential is not bound to.
        "unbound client id": login(usp311, eid, EVIL_USER, EVIL_PASSWORD),
        "unknown user": login(usp311, eid, "platform", "x"),
    }[who]
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            pass


async def test_a_device_credential_does_not_open_the_nats_port(usp311, mqtt311):
    import nats
    from nats.errors import NoServersError

    from oktoscripts.launcher.embedded.ports import wait_for_port

    assert wait_for_port("127.0.0.1", mqtt311.port, 1)
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        nc = await nats.connect(
            f"nats://{WS_USER}:{WS_PASSWORD}@127.0.0.1:{mqtt311.port}",
            allow_reconnect=False,
            connect_timeout=3,
        )
        await nc.close()


async def test_a_forged_answer_never_reaches_the_script(usp311, evil):
    """The attack of the issue: while a script waits for a victim's answer, another
    client publishes a response in the victim's name. It is refused by the broker on
    the victim's topic, and dropped by the controller on the attacker's own topic;
    the script gets the timeout, never the forged value."""
    from oktoscripts.devices.credentials import CredentialStore

    victim = await usp311.start_agent("victim-mqtt", mtp="mqtt")
    await usp311.process.registrar.wait_idle()
    eid = victim.config.endpoint_id
    attacker = f"os::evil{SESSION}"
    store = CredentialStore(usp311.registry.db)
    await asyncio.to_thread(store.bind, EVIL_USER, [attacker])
    topic = usp311.process.config.mqtt_topic
    victim.hooks.silent = True
    stats = usp311.controller.stats
    try:
        script = asyncio.ensure_future(get_model(usp311, eid, wall=4.0))
        await until(lambda: any(k[0] == eid for k in usp311.controller.pending))
        msg_id = next(k[1] for k in usp311.controller.pending if k[0] == eid)
        forged = messages.response_to(messages.request("get", msg_id, param_paths=["x"]), "get")[0]
        result = forged.body.response.get_resp.req_path_results.add(
            requested_path="Device.DeviceInfo.ModelName"
        )
        result.resolved_path_results.add(resolved_path="Device.DeviceInfo.").result_params[
            "ModelName"
        ] = "FORGED"
        record = records.encode_msg_record(forged, to_id=usp311.controller.endpoint_id, from_id=eid)
        dropped = stats.get("unroutable", 0)
        async with login(usp311, attacker, EVIL_USER, EVIL_PASSWORD) as client:
            for to in (
                mqtt_topics.agent_publish_topic(topic, eid),  # the victim's topic
                topic,  # the controller's own topic
                mqtt_topics.agent_publish_topic(topic, attacker),
            ):  # its own
                await client.publish(mqtt_topics.publish_topic_v311(to, "x/y"), record)
        answer = await script
    finally:
        victim.hooks.silent = False
    assert answer.get("error_code") == "408", answer
    # Only the Record on the attacker's own topic reached the controller: dropped.
    assert stats.get("unroutable", 0) == dropped + 1


async def test_an_agent_cannot_listen_to_another_agents_topic(usp311, evil):
    victim = usp311.agent_config("eavesdropped")
    attacker = f"os::evil{SESSION}"
    async with login(usp311, attacker, EVIL_USER, EVIL_PASSWORD) as client:
        for stolen in (f"{victim.agent_topic}/#", f"{usp311.process.config.mqtt_topic}/#", "#"):
            result = await client.subscribe(stolen)
            assert result == [128], (stolen, result)  # SUBACK: failure


async def test_the_controller_does_not_use_an_agent_answering_under_another_id(usp311):
    """Dialing an agent's WebSocket server: the agent must announce the Endpoint ID
    the controller was configured to dial."""
    from oktoscripts.sim.usp_agent import SimAgent

    agent = SimAgent(usp311.agent_config("dialed", mtp="websocket-server"))
    task = asyncio.ensure_future(agent.run())
    await asyncio.wait_for(agent.listening.wait(), 10)
    expected = usp311.agent_config("someone-else").endpoint_id
    dial = asyncio.ensure_future(
        usp311.process.websocket.dial(
            f"ws://127.0.0.1:{agent.config.ws_listen_port}/usp", expected, retry_s=0.2
        )
    )
    try:
        await asyncio.sleep(1.0)
        assert expected not in usp311.controller.links
        assert agent.config.endpoint_id not in usp311.controller.links
    finally:
        dial.cancel()
        await agent.stop()
        task.cancel()
