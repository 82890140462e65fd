"""The USP controller process: the controller, its MTPs, the device registry
and the NATS service put together from settings (``manage.py usp``; tests
and benchmarks start it in their own event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from oktoscripts import pki
from oktoscripts.devices.maintenance import maintain
from oktoscripts.usp import mqtt_topics
from oktoscripts.usp.admission import Admission, auth_mode, check_credential
from oktoscripts.usp.broker_auth import BrokerAuthService, load_auth_file
from oktoscripts.usp.controller import AgentLink, Controller
from oktoscripts.usp.endpoint import endpoint_id_problem
from oktoscripts.usp.liveness import DEFAULT_LEASE_S, Liveness
from oktoscripts.usp.mqtt_mtp import MqttMtp
from oktoscripts.usp.registration import Registrar
from oktoscripts.usp.service import ControllerService
from oktoscripts.usp.websocket_mtp import WebSocketMtp

log = logging.getLogger(__name__)


@dataclass
class ControllerConfig:
    endpoint_id: str
    mqtt_url: str = ""
    mqtt_topic: str = "usp/controller"
    mqtt_version: str = "auto"
    mqtt_qos: int = 0
    mqtt_agent_topic: str = "usp/agent"  # agents listen on <this>/<their Endpoint ID>
    mqtt_identity: str = "topic"  # "topic": a Record must come on its sender's topic; "none"
    mqtt_ca: str = ""  # CA bundle of an mqtts:// broker ("": system CAs and the platform's)
    mqtt_cert: tuple[str, str] = ("", "")  # the controller's client certificate and key
    broker_auth_file: str = ""  # the embedded broker's: this process answers its MQTT logins
    ws_host: str = "127.0.0.1"
    ws_port: int | None = 8081  # None: no WebSocket MTP; 0: any free port
    ws_auth: str = "on"  # admission.MODES
    ws_tls: bool = False  # wss:// with the platform's certificate (pki.tls_files())
    ws_dial: list[tuple[str, str]] = field(default_factory=list)  # (endpoint id, ws:// URL)
    mqtt_lease_s: float = DEFAULT_LEASE_S  # an MQTT agent silent this long is probed/offline

    @classmethod
    def from_settings(cls) -> ControllerConfig:
        from django.conf import settings

        from oktoscripts.config import ConfigError

        problem = endpoint_id_problem(settings.USP_ENDPOINT_ID)
        if problem:
            raise ConfigError("OKTOSCRIPTS_USP_ENDPOINT_ID", problem)
        if settings.USP_MQTT_VERSION not in ("auto", "5", "3.1.1"):
            raise ConfigError("OKTOSCRIPTS_USP_MQTT_VERSION", "expected auto, 5 or 3.1.1")
        for name, topic in (
            ("OKTOSCRIPTS_USP_MQTT_TOPIC", settings.USP_MQTT_TOPIC),
            ("OKTOSCRIPTS_USP_MQTT_AGENT_TOPIC", settings.USP_MQTT_AGENT_TOPIC),
        ):
            problem = mqtt_topics.topic_problem(topic)
            if problem:
                raise ConfigError(name, problem)
        if settings.USP_MQTT_IDENTITY not in ("topic", "none"):
            raise ConfigError("OKTOSCRIPTS_USP_MQTT_IDENTITY", "expected topic or none")
        dial = []
        for item in settings.USP_WS_DIAL:
            eid, sep, url = item.partition("=")
            if not sep or endpoint_id_problem(eid) or not url.startswith(("ws://", "wss://")):
                raise ConfigError(
                    "OKTOSCRIPTS_USP_WS_DIAL",
                    f"expected endpoint-id=ws://host:port/path, got {item!r}",
                )
            dial.append((eid, url))
        lease = settings.USP_MQTT_LEASE_S
        if not lease > 0:
            raise ConfigError("OKTOSCRIPTS_USP_MQTT_LEASE", "expected a number of seconds > 0")
        mode = auth_mode(settings.USP_WS_AUTH)
        if mode is None:
            raise ConfigError("OKTOSCRIPTS_USP_WS_AUTH", "expected on, cert or off")
        return cls(
            endpoint_id=settings.USP_ENDPOINT_ID,
            mqtt_url=settings.MQTT_URL,
            mqtt_topic=settings.USP_MQTT_TOPIC,
            mqtt_version=settings.USP_MQTT_VERSION,
            mqtt_agent_topic=settings.USP_MQTT_AGENT_TOPIC,
            mqtt_identity=settings.USP_MQTT_IDENTITY,
            mqtt_ca=settings.MQTT_CA,
            mqtt_cert=(settings.MQTT_CERT, settings.MQTT_KEY),
            broker_auth_file=settings.EMBEDDED_MQTT_AUTH,
            ws_host=settings.USP_WS_HOST,
            ws_port=settings.USP_WS_PORT,
            ws_auth=mode,
            ws_tls=settings.USP_WS_TLS,
            ws_dial=dial,
            mqtt_lease_s=lease,
        )


class ControllerProcess:
    """Everything of one running controller."""

    def __init__(
        self, config: ControllerConfig, *, nc: Any, registry: Any, credentials: Any | None
    ) -> None:
        self.config = config
        self.controller = Controller(config.endpoint_id)
        self.registry = registry
        self.owner = f"usp:{config.endpoint_id}"
        self.registrar = Registrar(self.controller, registry, owner=self.owner)
        self.service = ControllerService(self.controller, nc)
        self.liveness = Liveness(
            self.controller, config.mqtt_lease_s, on_expired=self.registrar.agent_silent
        )
        self.mqtt: MqttMtp | None = None
        self.broker_auth: BrokerAuthService | None = None
        self.websocket: WebSocketMtp | None = None
        self._credentials = credentials
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        # MQTT agents of a previous run may still hold their broker sessions: they
        # are probed once MQTT is up (and registered again if they answer).
        routes = await asyncio.to_thread(self.registry.usp_mqtt_routes, self.owner)
        # Agents this controller held before a restart are not connected any more.
        released = await asyncio.to_thread(self.registry.release_owner, "usp", self.owner)
        if released:
            log.info("usp: %d agents of a previous run marked offline", released)
        await self.service.start()
        loop = asyncio.get_running_loop()
        # The registry's upkeep: agents silent past their lease go offline,
        # new-device events a crash left unpublished go out.
        self._tasks.append(loop.create_task(maintain(self.registry)))
        if self.config.broker_auth_file:
            # Before our own MQTT login, which it answers too.
            auth = await asyncio.to_thread(load_auth_file, self.config.broker_auth_file)
            self.broker_auth = BrokerAuthService(
                auth,
                credentials=self._credentials,
                controller_topic=self.config.mqtt_topic,
                agent_topic=self.config.mqtt_agent_topic,
            )
            await self.broker_auth.start()
        if self.config.mqtt_url:
            self.mqtt = MqttMtp(
                self.controller,
                self.config.mqtt_url,
                self.config.mqtt_topic,
                version=self.config.mqtt_version,
                qos=self.config.mqtt_qos,
                identity=self.config.mqtt_identity,
                ca=self.config.mqtt_ca,
                client_cert=self.config.mqtt_cert,
            )
            self.controller.link_loader = self._mqtt_link_from_registry
            self._tasks.append(loop.create_task(self.mqtt.run()))
            self._tasks.append(loop.create_task(self.liveness.run()))
            self._tasks.append(loop.create_task(self._recover(routes)))
        if self.config.ws_port is not None:
            tls = None
            if self.config.ws_tls:
                tls = (await asyncio.to_thread(pki.tls_files)).server_context(ssl.CERT_OPTIONAL)
            self.websocket = WebSocketMtp(
                self.controller,
                host=self.config.ws_host,
                port=self.config.ws_port,
                admission=Admission(self.config.ws_auth, self._check_credential),
                tls=tls,
            )
            await self.websocket.start()
            for eid, url in self.config.ws_dial:
                self._tasks.append(loop.create_task(self.websocket.dial(url, eid)))

    async def wait_mqtt(self, timeout: float = 10.0) -> None:
        if self.mqtt is not None:
            await asyncio.wait_for(self.mqtt.connected.wait(), timeout)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.websocket is not None:
            await self.websocket.stop()
        await self.service.stop()
        if self.broker_auth is not None:
            await self.broker_auth.stop()
        await self.registrar.wait_idle()

    async def _check_credential(self, username: str, password: str, endpoint_id: str) -> str:
        """ "ok", "bad-password" or "not-bound" (a right password of a credential that
        may not speak for ``endpoint_id``)."""
        if self._credentials is None:
            return "bad-password"
        try:
            return await asyncio.to_thread(
                check_credential, self._credentials, username, password, endpoint_id
            )
        except Exception:
            log.exception("usp: credential check failed")
            return "bad-password"

    async def _recover(self, routes: list[tuple[str, str]]) -> None:
        # Only agents listening where agents of this installation listen (a topic
        # of another agent topic setting is one no agent of ours uses any more).
        prefix = self.config.mqtt_agent_topic.rstrip("/") + "/"
        routes = [(eid, topic) for eid, topic in routes if topic.startswith(prefix)]
        if not routes or self.mqtt is None:
            return
        await self.mqtt.connected.wait()
        await self.liveness.recover(
            [self.mqtt.link(eid, topic, confirmed=False) for eid, topic in routes]
        )

    async def _mqtt_link_from_registry(self, endpoint_id: str) -> AgentLink | None:
        """After a controller restart, MQTT agents are still reachable at the topic
        the registry remembers."""
        try:
            doc = await asyncio.to_thread(self.registry.get, endpoint_id)
        except Exception:
            return None
        mqtt = ((doc or {}).get("usp") or {}).get("mtps", {}).get("mqtt") or {}
        topic = (mqtt.get("address") or {}).get("topic")
        if not topic or mqtt.get("state") not in ("connected", "silent") or self.mqtt is None:
            return None
        # Unconfirmed: its first answer marks the agent online again.
        return self.mqtt.link(endpoint_id, topic, confirmed=False)
