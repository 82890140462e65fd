"""Which MQTT version a simulated agent speaks when told "auto": MQTT 5 where the
broker accepts it, else 3.1.1, found once per broker rather than at every connect.

nats-server (the embedded MQTT broker) speaks only MQTT 3.1.1 and logs an error
line for every MQTT 5 CONNECT it refuses, so probing at each connect fills the
log of ``up`` with errors that are not errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from pathlib import Path

import pytest

from tests.test_up import Up, wait_until

from .conftest import MOSQUITTO, _mqtt5_reachable

REFUSED = "unacceptable protocol version"
TAG = uuid.uuid4().hex[:6]


CONTROLLER_TOPIC = f"okto-ver-{TAG}/controller"
AGENT_TOPIC = f"okto-ver-{TAG}/agent"
USER, PASSWORD = f"ver-{TAG}", "ver-secret"


@pytest.fixture(scope="module")
def broker311(tmp_path_factory) -> tuple[str, Path]:
    """An MQTT 3.1.1-only broker (an embedded nats-server of this module) and its log."""
    from oktoscripts.launcher.embedded.services import EmbeddedServices

    services = EmbeddedServices(tmp_path_factory.mktemp("mqtt-version"))
    services.start_nats()
    yield services.nats, services.data_dir / "nats-server.log"
    services.stop()


@pytest.fixture
async def logins(broker311, mongo_db):
    """The broker's logins answered (as the controller does), for USER bound to os::ver*."""
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.usp import mqtt_topics
    from oktoscripts.usp.broker_auth import BrokerAuthService, load_auth_file

    store = CredentialStore(mongo_db)
    await asyncio.to_thread(store.create_or_update, USER, PASSWORD)
    await asyncio.to_thread(store.bind, USER, [f"os::ver{TAG}-*"])
    broker = broker311[0]
    service = BrokerAuthService(
        load_auth_file(broker.auth_file),
        credentials=store,
        controller_topic=CONTROLLER_TOPIC,
        agent_topic=AGENT_TOPIC,
    )
    await service.start()
    try:
        address = mqtt_topics.broker_address(broker.mqtt_url).without_credentials()
        yield mqtt_topics.broker_url(address), broker311[1]
    finally:
        await service.stop()


def agent_config(name: str, mqtt_url: str):
    from oktoscripts.sim.usp_agent import AgentConfig

    eid = f"os::ver{TAG}-{name}"
    return AgentConfig(
        endpoint_id=eid,
        controller_id=f"oui:000000:ver-{TAG}",
        mqtt_url=mqtt_url,
        mqtt_version="auto",
        controller_topic=CONTROLLER_TOPIC,
        agent_topic=f"{AGENT_TOPIC}/{eid}",
        username=USER,
        password=PASSWORD,
        retry_s=0.2,
        reboot_s=0.1,
    )


def refusals(log: Path) -> int:
    return log.read_text(errors="replace").count(REFUSED)


async def reconnect(agent) -> None:
    """Drop the agent's connection as a power cut would, and wait until it is back."""
    agent.connected.clear()
    agent.drop_connection()
    await asyncio.wait_for(agent.connected.wait(), 15)


@contextlib.asynccontextmanager
async def fleet(agents):
    from oktoscripts.sim.usp_agent import run_fleet

    task = asyncio.ensure_future(run_fleet(agents))
    try:
        for agent in agents:
            await asyncio.wait_for(agent.connected.wait(), 15)
        yield
    finally:
        for agent in agents:
            await agent.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def test_a_fleet_tries_mqtt5_once_against_a_311_broker(logins):
    from oktoscripts.sim.usp_agent import SimAgent

    url, log = logins
    before = refusals(log)
    agents = [SimAgent(agent_config(f"fleet{n}", url)) for n in range(4)]
    async with fleet(agents):
        for agent in agents[:2]:
            await reconnect(agent)
    # One MQTT 5 CONNECT refused in all (none if the module already knew the broker),
    # not one per agent and per reconnect.
    assert refusals(log) - before <= 1


async def test_an_agent_falls_back_when_the_broker_no_longer_speaks_its_version(logins):
    """Say the broker at this address spoke MQTT 5 earlier and was replaced by a
    3.1.1-only one: the agent gets refused once, probes again, and connects."""
    from oktoscripts.sim import usp_agent
    from oktoscripts.usp import mqtt_topics

    url, _ = logins
    address = mqtt_topics.broker_address(url)
    usp_agent._broker_versions[(address.host, address.port)] = "5"
    agent = usp_agent.SimAgent(agent_config("replaced", url))
    async with fleet([agent]):
        assert usp_agent._broker_versions[(address.host, address.port)] == "3.1.1"


async def test_an_agent_speaks_mqtt5_to_a_broker_that_accepts_it():
    import aiomqtt

    from oktoscripts.sim.usp_agent import SimAgent
    from oktoscripts.usp import records
    from oktoscripts.usp.proto.usp_record_pb2 import MQTTConnectRecord

    problem = await _mqtt5_reachable()
    if problem:
        pytest.skip(problem)
    config = agent_config("five", f"mqtt://{MOSQUITTO[0]}:{MOSQUITTO[1]}")
    async with aiomqtt.Client(*MOSQUITTO, protocol=aiomqtt.ProtocolVersion.V5) as listener:
        await listener.subscribe(f"{config.controller_topic}/#")
        agent = SimAgent(config)
        async with fleet([agent]):
            await reconnect(agent)
            # Both connects announce MQTT 5 in their MQTT connect Record, sent to the
            # controller's own topic with a response topic (the MQTT 5 binding; with
            # 3.1.1 the reply-to address is in the topic, which this does not match).
            connects = 0
            async with asyncio.timeout(15):
                async for message in listener.messages:
                    record = records.decode_record(message.payload)
                    if record.WhichOneof("record_type") != "mqtt_connect":
                        continue
                    assert record.mqtt_connect.version == MQTTConnectRecord.V5
                    assert message.topic.value == config.publish_topic  # its own topic
                    assert message.properties.ResponseTopic == config.agent_topic
                    connects += 1
                    if connects == 2:
                        break


@pytest.mark.timeout(180)
def test_up_starts_its_usp_agents_without_mqtt_errors(data_dir):
    platform = Up(data_dir)
    try:
        platform.wait_ready()
        wait_until(
            lambda: len(re.findall(r"agent \S+ online over mqtt", platform.output())) >= 3,
            60,
            "the simulated USP agents to be online",
        )
        out = platform.output()
        assert REFUSED not in out and "Traceback" not in out, out
        assert not re.search(r"\| (WARNING|ERROR) .*mqtt", out, re.I), out
    finally:
        platform.stop()
