"""Fixtures of the USP tests: a real controller (MQTT and WebSocket MTPs on
real sockets, real NATS and MongoDB) and simulated agents talking to it.

MQTT 3.1.1 goes through the MQTT listener of an embedded nats-server that
these tests start (the session's NATS may have MQTT off), whose logins the
controller answers; MQTT 5 through the machine's Mosquitto on
127.0.0.1:1883 when it is there (skipped otherwise). Topics carry the
session id, so runs sharing a broker never meet. The agents log in with the
credential WS_USER, bound to every Endpoint ID of the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

SESSION = uuid.uuid4().hex[:6]
CONTROLLER_ID = f"oui:000000:okto-test-{SESSION}"
WS_USER, WS_PASSWORD = "usp-agent", "usp-secret"
MOSQUITTO = ("127.0.0.1", 1883)


def controller_topic(tag: str) -> str:
    return f"okto-test-{SESSION}/{tag}/controller"


@pytest.fixture(scope="session")
def usp_names() -> dict[str, str]:
    """The session's names: SESSION, CONTROLLER_ID, WS_USER, WS_PASSWORD."""
    return {
        "SESSION": SESSION,
        "CONTROLLER_ID": CONTROLLER_ID,
        "WS_USER": WS_USER,
        "WS_PASSWORD": WS_PASSWORD,
    }


def agent_base(tag: str) -> str:
    return f"okto-test-{SESSION}/{tag}/agent"


@pytest.fixture(scope="session")
def mqtt311(tmp_path_factory):
    """An embedded nats-server of our own, for its MQTT 3.1.1 listener (its
    NatsServerConfig: ``mqtt_url`` holds the controller's login)."""
    from oktoscripts.launcher.embedded.services import EmbeddedServices

    services = EmbeddedServices(tmp_path_factory.mktemp("usp-mqtt"))
    services.start_nats()
    yield services.nats
    services.stop()


@pytest.fixture(scope="session")
def mqtt311_url(mqtt311) -> str:
    """The embedded broker's MQTT URL, without credentials (what agents are given)."""
    from oktoscripts.usp import mqtt_topics

    return mqtt_topics.broker_url(
        mqtt_topics.broker_address(mqtt311.mqtt_url).without_credentials()
    )


async def _mqtt5_reachable() -> str | None:
    """None when Mosquitto answers an MQTT 5 CONNECT on 127.0.0.1:1883, else why not."""
    try:
        with socket.create_connection(MOSQUITTO, timeout=1):
            pass
    except OSError as exc:
        return f"no MQTT broker on 127.0.0.1:1883 ({exc})"
    import aiomqtt

    try:
        async with aiomqtt.Client(*MOSQUITTO, protocol=aiomqtt.ProtocolVersion.V5, timeout=3):
            return None
    except aiomqtt.MqttError as exc:
        return f"the broker on 127.0.0.1:1883 refused MQTT 5 ({exc})"


@pytest.fixture(scope="session")
def mongo_db(mongo_uri):
    import pymongo
    from django.conf import settings

    client = pymongo.MongoClient(mongo_uri, tz_aware=True)
    yield client[settings.MONGO_DB_NAME]
    client.close()


@dataclass
class UspEnv:
    """A running controller, its agents, and what a test needs to script them."""

    variant: str
    nc: Any
    registry: Any
    process: Any
    mqtt_url: str
    mqtt_version: str
    topic_tag: str
    agents: list = field(default_factory=list)
    _tasks: list = field(default_factory=list)

    @property
    def controller(self):
        return self.process.controller

    @property
    def agent_mtp(self) -> str:
        return "websocket" if self.variant == "websocket" else "mqtt"

    def services(self):
        from oktoscripts.bindings.services import Services

        return Services(nats=self.nc, mongo=self.registry.db, devices=self.registry)

    async def run(self, source: str, *, args: dict | None = None, wall: float = 30.0):
        from oktoscripts.lua.limits import Limits
        from oktoscripts.lua.run import LuaRun

        run = LuaRun(
            source, services=self.services(), args=args or {}, limits=Limits(wall_seconds=wall)
        )
        return await run.run(), run

    def agent_config(self, name: str, mtp: str | None = None, **overrides):
        from oktoscripts.sim.usp_agent import AgentConfig

        mtp = mtp or self.agent_mtp
        options = dict(
            endpoint_id=f"os::t{SESSION}-{self.variant.replace('.', '')}-{name}",
            controller_id=CONTROLLER_ID,
            mtp=mtp,
            mqtt_url=self.mqtt_url,
            mqtt_version=self.mqtt_version,
            controller_topic=self.process.config.mqtt_topic,
            ws_url=f"ws://127.0.0.1:{self.process.websocket.port}/usp",
            username=WS_USER,
            password=WS_PASSWORD,
            retry_s=0.2,
            reboot_s=0.1,
        )
        options.update(overrides)
        options.setdefault(
            "agent_topic", f"{self.process.config.mqtt_agent_topic}/{options['endpoint_id']}"
        )
        return AgentConfig(**options)

    async def start_agent(self, name: str, *, wait_registered: bool = True, **overrides):
        from oktoscripts.sim.usp_agent import SimAgent

        agent = SimAgent(self.agent_config(name, **overrides))
        self._tasks.append(asyncio.get_running_loop().create_task(agent.run()))
        await asyncio.wait_for(agent.connected.wait(), 15)
        if wait_registered:
            await self.wait_device(agent.config.endpoint_id, lambda d: d.get("status") == 2)
        self.agents.append(agent)
        return agent

    async def wait_device(self, serial: str, condition, timeout: float = 15.0) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            device = await asyncio.to_thread(self.registry.get_lua, serial)
            if device and condition(device):
                return device
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"device {serial} never got there: {device}")
            await asyncio.sleep(0.05)

    async def stop_agents(self) -> None:
        for agent in self.agents:
            await agent.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.agents.clear()
        self._tasks.clear()


async def start_env(
    variant: str, *, nats_url: str, mongo_db, mqtt_url: str, broker=None, **options
) -> UspEnv:
    """A controller; ``broker``: the embedded broker (NatsServerConfig) whose
    logins it answers, MQTT_URL (the controller's login) then taken from it."""
    import nats

    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.devices.events import LoopAnnouncer
    from oktoscripts.devices.registry import DeviceRegistry
    from oktoscripts.usp.app import ControllerConfig, ControllerProcess

    nc = await nats.connect(nats_url)
    registry = DeviceRegistry(mongo_db, announcer=LoopAnnouncer(nc))
    await asyncio.to_thread(registry.ensure_indexes)
    credentials = CredentialStore(mongo_db)
    await asyncio.to_thread(credentials.create_or_update, WS_USER, WS_PASSWORD)
    await asyncio.to_thread(credentials.bind, WS_USER, [f"os::t{SESSION}-*"])
    version = "5" if variant == "mqtt-5" else "3.1.1"
    tag = variant.replace(".", "")
    if broker is not None:
        options.setdefault("broker_auth_file", str(broker.auth_file))
    settings = dict(
        endpoint_id=CONTROLLER_ID,
        mqtt_url=broker.mqtt_url if broker is not None else mqtt_url,
        mqtt_topic=controller_topic(tag),
        mqtt_version=version,
        ws_port=0,
        mqtt_agent_topic=agent_base(tag),
    )
    config = ControllerConfig(**{**settings, **options})
    process = ControllerProcess(config, nc=nc, registry=registry, credentials=credentials)
    await process.start()
    await process.wait_mqtt()
    return UspEnv(variant, nc, registry, process, mqtt_url, version, tag)


async def stop_env(env: UspEnv) -> None:
    await env.stop_agents()
    await env.process.stop()
    await env.nc.close()


@pytest.fixture(scope="module", params=["mqtt-3.1.1", "websocket", "mqtt-5"])
async def usp(request, nats_url, mongo_db, mqtt311, mqtt311_url):
    """A controller and three agents on one MTP: MQTT 3.1.1 (embedded nats-server),
    WebSocket, or MQTT 5 (Mosquitto, when present)."""
    mqtt_url, broker = mqtt311_url, mqtt311
    if request.param == "mqtt-5":
        problem = await _mqtt5_reachable()
        if problem:
            pytest.skip(f"MQTT 5 variant skipped: {problem}")
        mqtt_url, broker = f"mqtt://{MOSQUITTO[0]}:{MOSQUITTO[1]}", None
    env = await start_env(
        request.param, nats_url=nats_url, mongo_db=mongo_db, mqtt_url=mqtt_url, broker=broker
    )
    try:
        for name in ("a1", "a2", "a3"):
            await env.start_agent(name)
        yield env
    finally:
        await stop_env(env)


@pytest.fixture(scope="module")
async def usp311(nats_url, mongo_db, mqtt311, mqtt311_url):
    """A controller with MQTT 3.1.1 and WebSocket MTPs and no agents yet (safety tests)."""
    env = await start_env(
        "mqtt-3.1.1", nats_url=nats_url, mongo_db=mongo_db, mqtt_url=mqtt311_url, broker=mqtt311
    )
    try:
        yield env
    finally:
        await stop_env(env)


@pytest.fixture(scope="session")
def authority(tmp_path_factory):
    """(CA, TLSFiles, data dir): the platform's CA and server certificate, made as
    ``up`` makes them, under a data directory of this session."""
    from oktoscripts import pki

    data_dir = tmp_path_factory.mktemp("usp-pki")
    ca = pki.Authority.ensure(data_dir / "pki")
    return ca, ca.ensure_server_certificate(pki.server_hostnames()), data_dir


def certificate_files(directory, authority, eid: str, name: str) -> tuple[str, str]:
    """A client certificate for ``eid`` from ``authority``: (cert, key) file names."""
    cert, key = authority.issue_usp_agent(eid)
    (directory / f"{name}.pem").write_bytes(cert)
    (directory / f"{name}.key").write_bytes(key)
    return str(directory / f"{name}.pem"), str(directory / f"{name}.key")
