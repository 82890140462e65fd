"""The controller's MQTT MTP: subscribes its topic on the broker, hands
received Records to the controller, and publishes to agents' topics.

MQTT 5 where the broker speaks it (Mosquitto, EMQX, ...), else MQTT 3.1.1
(the MQTT listener of nats-server), following the TR-369 MQTT binding for
each (mqtt_topics.py).

Who sent a Record: every agent publishes to its own topic below the
controller's, ``<topic>/<its Endpoint ID>``, which the broker lets only that
agent publish to (ACLs; the embedded broker's login service). With identity
"topic" (the default) a Record whose from_id is not the Endpoint ID of the
topic it came on is dropped, and so is one sent to the controller topic
itself; "none" believes from_id, for a broker that cannot tell agents apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import Callable
from pathlib import Path

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from oktoscripts import pki
from oktoscripts.usp import mqtt_topics
from oktoscripts.usp.controller import AgentLink, Controller

log = logging.getLogger(__name__)

RECONNECT_DELAY_S = 1.0
RECORD_PARSE_ERROR = 7100  # TR-369 brokered MTP error: Record could not be parsed


def connect_properties(endpoint_id: str) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.UserProperty = [("usp-endpoint-id", endpoint_id)]
    props.RequestResponseInformation = 1
    return props


def publish_properties(reply_to: str, err_id: str) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = reply_to
    props.ContentType = mqtt_topics.CONTENT_TYPE
    props.UserProperty = [("usp-err-id", err_id)]
    return props


def broker_tls_context(ca: str = "", cert: str = "", key: str = "") -> ssl.SSLContext:
    """How a client checks an mqtts:// broker: against ``ca`` when given, else
    against the system's CAs and the platform's own CA (which signs the
    certificate of the embedded broker's MQTT listener); presenting the client
    certificate ``cert`` (and ``key``) when given."""
    context = pki.client_context(Path(ca) if ca else None)
    if not ca:
        with contextlib.suppress(OSError, ValueError):
            context.load_verify_locations(cafile=pki.tls_files().ca)
    if cert:
        context.load_cert_chain(cert, key or None)
    return context


async def connect(
    address: mqtt_topics.BrokerAddress,
    *,
    endpoint_id: str,
    version: str,
    identifier: str | None = None,
    will: Callable[[bool], aiomqtt.Will] | None = None,
    tls: ssl.SSLContext | None = None,
) -> tuple[aiomqtt.Client, bool]:
    """A connected client and whether it speaks MQTT 5. ``version``: "5", "3.1.1" or "auto"
    (5, falling back to 3.1.1 when the broker refuses it). ``will(v5)`` makes the Will.
    An mqtts:// address is reached over TLS checked with ``tls`` (default:
    ``broker_tls_context()``)."""
    attempts = {"5": [True], "3.1.1": [False], "auto": [True, False]}[version]
    if address.tls and tls is None:
        tls = broker_tls_context()
    last_error: Exception | None = None
    for v5 in attempts:
        client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            tls_context=tls if address.tls else None,
            identifier=identifier or ("" if v5 else endpoint_id),
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            properties=connect_properties(endpoint_id) if v5 else None,
            clean_session=None if v5 else True,
            will=will(v5) if will else None,
            keepalive=30,
            timeout=10,
        )
        try:
            await client.__aenter__()
            return client, v5
        except aiomqtt.MqttError as exc:
            last_error = exc
            log.debug("mqtt: %s refused MQTT %s: %s", address.host, "5" if v5 else "3.1.1", exc)
    raise last_error or aiomqtt.MqttError("cannot connect")


class MqttMtp:
    """The MQTT side of one controller."""

    def __init__(
        self,
        controller: Controller,
        url: str,
        topic: str,
        *,
        version: str = "auto",
        qos: int = 0,
        identity: str = "topic",
        ca: str = "",
        client_cert: tuple[str, str] = ("", ""),
    ) -> None:
        self.controller = controller
        self.address = mqtt_topics.broker_address(url)
        self.topic = topic
        self.version = version
        self.qos = qos
        self.identity = identity
        self.ca = ca
        self.client_cert = client_cert
        self.client: aiomqtt.Client | None = None
        self.v5 = False
        self.connected = asyncio.Event()
        self._identifier = f"okto-usp-{uuid.uuid4().hex[:12]}"

    async def run(self) -> None:
        """Connect, subscribe and receive for ever, reconnecting after a broker outage."""
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                log.warning(
                    "usp mqtt: %s:%s: %s; reconnecting", self.address.host, self.address.port, exc
                )
            finally:
                self.connected.clear()
                client, self.client = self.client, None
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.__aexit__(None, None, None)
            await asyncio.sleep(RECONNECT_DELAY_S)

    async def _session(self) -> None:
        tls = None
        if self.address.tls:
            tls = await asyncio.to_thread(broker_tls_context, self.ca, *self.client_cert)
        self.client, self.v5 = await connect(
            self.address,
            endpoint_id=self.controller.endpoint_id,
            version=self.version,
            identifier=self._identifier,
            tls=tls,
        )
        await self.client.subscribe(mqtt_topics.subscription_filter(self.topic), qos=self.qos)
        log.info(
            "usp mqtt: subscribed %s on %s:%s (MQTT %s)",
            self.topic,
            self.address.host,
            self.address.port,
            "5" if self.v5 else "3.1.1",
        )
        self.connected.set()
        async for message in self.client.messages:
            await self._receive(message)

    async def _receive(self, message: aiomqtt.Message) -> None:
        reply_to = None
        if message.properties is not None and hasattr(message.properties, "ResponseTopic"):
            reply_to = message.properties.ResponseTopic
        reply_to = reply_to or mqtt_topics.reply_to_from_topic(message.topic.value)
        payload = message.payload if isinstance(message.payload, bytes) else b""
        err_id = dict(getattr(message.properties, "UserProperty", None) or []).get("usp-err-id")
        publisher = mqtt_topics.publisher_of(message.topic.value, self.topic)
        await self.controller.on_record(payload, _MqttSource(self, reply_to, err_id, publisher))

    def link(self, endpoint_id: str, topic: str, confirmed: bool = True) -> AgentLink:
        """The route to an agent's topic; ``confirmed`` False for one remembered
        from before (not yet heard over)."""

        async def send(data: bytes) -> None:
            await self.publish(topic, data, endpoint_id)

        return AgentLink(endpoint_id, "mqtt", send, {"topic": topic}, confirmed=confirmed)

    async def publish(self, topic: str, data: bytes, to_id: str) -> None:
        client = self.client
        if client is None:
            raise ConnectionError("not connected to the MQTT broker")
        # The agent answers to its own topic below ours (mqtt_topics.agent_publish_topic).
        reply_to = mqtt_topics.agent_publish_topic(self.topic, to_id)
        if self.v5:
            await client.publish(
                topic, data, qos=self.qos, properties=publish_properties(reply_to, to_id)
            )
        else:
            await client.publish(
                mqtt_topics.publish_topic_v311(topic, reply_to), data, qos=self.qos
            )


class _MqttSource:
    def __init__(
        self, mtp: MqttMtp, reply_to: str | None, err_id: str | None, publisher: str | None
    ) -> None:
        self.mtp = mtp
        self.reply_to = reply_to
        self.err_id = err_id
        self.publisher = publisher  # the Endpoint ID of the topic the Record came on

    def link_for(self, from_id: str) -> AgentLink | None:
        if self.mtp.identity == "topic" and self.publisher != from_id:
            self.mtp.controller.limited_log.warning(
                "mqtt-identity",
                "usp mqtt: dropped a record claiming to be from %s sent on the topic of %s",
                from_id,
                self.publisher or "no agent (the controller topic)",
            )
            return None
        return self.mtp.link(from_id, self.reply_to) if self.reply_to else None

    async def bad_record(self, reason: str) -> None:
        """MQTT 3.1.1 drops a bad Record silently (R-MQTT.30); MQTT 5 tells the sender
        in a usp.error PUBLISH to its Response Topic (R-MQTT.31)."""
        client = self.mtp.client
        if not (self.mtp.v5 and self.reply_to and client is not None):
            return
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = mqtt_topics.ERROR_CONTENT_TYPE
        if self.err_id:
            props.UserProperty = [("usp-err-id", self.err_id)]
        text = reason.replace("\n", " ")[:200]
        payload = f"err_code:{RECORD_PARSE_ERROR}\nerr_msg:{text}".encode()
        try:
            await client.publish(self.reply_to, payload, qos=self.mtp.qos, properties=props)
        except aiomqtt.MqttError as exc:
            log.debug("usp mqtt: cannot report a bad record: %s", exc)
