"""The simulated USP agent: a TR-181 device that speaks USP over MQTT
(3.1.1 or 5) or WebSocket to a controller, over real sockets.

On start it connects its MTP (as a real agent would: MQTT with a device
credential and its Endpoint ID as client identifier, publishing to its own
topic below the controller's; WebSocket with a client certificate or a
device credential; TLS for mqtts:// and wss:// URLs, checked against
``tls_ca``), sends the MTP connect Record (USP 1.3) and the Boot! event
(asking for a NotifyResp); it answers requests from its data model
(usp_requests.py), reboots on Device.Reboot(), completes asynchronous
commands with an OperationComplete notification, and sends ValueChange
notifications for the subscriptions the controller created. Many agents run
in one asyncio process (``run_fleet``).

Test hooks: ``delays`` (requested path -> seconds before answering),
``silent`` (never answer), ``disconnect_on_request`` (drop the connection
when a request arrives), ``refuse_handshakes`` (a WebSocket server agent
answers that many handshakes with HTTP 403), ``notify_responses``
(NotifyResps received).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import ssl
from dataclasses import dataclass, field, replace

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from oktoscripts.sim import usp_firmware, usp_requests
from oktoscripts.sim.tr181 import DataModel, default_device
from oktoscripts.usp import messages, mqtt_topics, records, ws_extension
from oktoscripts.usp.messages import Msg
from oktoscripts.usp.mqtt_mtp import broker_tls_context
from oktoscripts.usp.mqtt_mtp import connect as mqtt_connect
from oktoscripts.usp.records import RecordError

log = logging.getLogger(__name__)

BOOT_SUBSCRIPTION = "boot"
NOTIFY_RETRY_MAX_S = 60.0
OPERATION_SUBSCRIPTION = "operation-complete"

# The MQTT version each broker (host, port) accepted, for the agents of this process
# whose version is "auto": they probe MQTT 5 once per broker, not at every (re)connect.
# A 3.1.1-only broker (the MQTT listener of nats-server) logs every refused MQTT 5
# CONNECT as an error, so probing on each reconnect of a fleet fills its log.
_broker_versions: dict[tuple[str, int], str] = {}


async def _mqtt_connect_remembered(
    address: mqtt_topics.BrokerAddress, version: str, **options: object
) -> tuple[aiomqtt.Client, bool]:
    """``mqtt_connect`` with "auto" resolved to the version the broker accepted before.
    A broker that now refuses that version is probed afresh on the next attempt."""
    key = (address.host, address.port)
    remembered = _broker_versions.get(key) if version == "auto" else None
    try:
        client, v5 = await mqtt_connect(address, version=remembered or version, **options)
    except aiomqtt.MqttCodeError:  # the broker answered: refused
        if remembered:
            _broker_versions.pop(key, None)
        raise
    if version == "auto":
        _broker_versions[key] = "5" if v5 else "3.1.1"
    return client, v5


@dataclass
class AgentConfig:
    endpoint_id: str
    controller_id: str
    mtp: str = "mqtt"  # "mqtt" | "websocket" | "websocket-server" (the controller dials in)
    serial: str = ""
    index: int = 1
    mqtt_url: str = ""
    mqtt_version: str = "auto"  # "5" | "3.1.1" | "auto"
    controller_topic: str = "usp/controller"  # the agent publishes to <this>/<endpoint id>
    agent_topic: str = ""  # default usp/agent/<endpoint id>
    ws_url: str = ""  # wss://127.0.0.1:8081/usp
    ws_listen_port: int = 0  # websocket-server: the port to listen on (0: any free port)
    username: str = ""  # a device credential (MQTT login; WebSocket Basic without a cert)
    password: str = ""
    tls_ca: str = ""  # CA the controller's / broker's certificate is checked with
    tls_cert: str = ""  # client certificate (PEM) naming the Endpoint ID, and its key
    tls_key: str = ""
    reboot_s: float = 0.2
    retry_s: float = 1.0
    notify_retry_s: float = 2.0  # first wait for a NotifyResp before sending again

    def __post_init__(self) -> None:
        self.serial = self.serial or self.endpoint_id.rsplit(":", 1)[-1]
        self.agent_topic = self.agent_topic or mqtt_topics.agent_topic(
            "usp/agent", self.endpoint_id
        )

    @property
    def publish_topic(self) -> str:
        return mqtt_topics.agent_publish_topic(self.controller_topic, self.endpoint_id)

    def tls_context(self) -> ssl.SSLContext:
        return broker_tls_context(self.tls_ca, self.tls_cert, self.tls_key)


@dataclass
class _Hooks:
    delays: dict[str, float] = field(default_factory=dict)
    silent: bool = False
    disconnect_on_request: bool = False
    refuse_handshakes: int = 0  # websocket-server: answer the next N handshakes with 403


class SimAgent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.dm: DataModel = default_device(config.endpoint_id, config.serial, config.index)
        self.dm.add_instance(
            "Device.LocalAgent.Controller.",
            {"Alias": "controller", "EndpointID": config.controller_id, "Enable": "true"},
        )
        self.dm.add_instance(
            "Device.LocalAgent.Subscription.",
            {
                "Alias": "boot",
                "Enable": "true",
                "ID": BOOT_SUBSCRIPTION,
                "NotifType": "Event",
                "ReferenceList": "Device.Boot!",
                "NotifRetry": "true",
                "Persistent": "true",
                "Recipient": "Device.LocalAgent.Controller.1.",
            },
        )
        self.dm.add_instance(
            "Device.LocalAgent.Subscription.",
            {
                "Alias": "opcomplete",
                "Enable": "true",
                "ID": OPERATION_SUBSCRIPTION,
                "NotifType": "OperationComplete",
                "ReferenceList": "Device.",
                "Persistent": "true",
                "Recipient": "Device.LocalAgent.Controller.1.",
            },
        )
        self.hooks = _Hooks()
        self.notify_responses: list[str] = []  # subscription ids of NotifyResps received
        self.connected = asyncio.Event()
        self.listening = asyncio.Event()  # websocket-server: the port is open
        self.boot_cause = "LocalReboot"
        self.boot_command_key = ""
        self.firmware_updated = False  # the next Boot! follows a new firmware image
        self._send = None
        self._close = None
        self._drop = None
        self._reconnect = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task] = set()
        self._msg_counter = 0
        self._awaiting_resp: dict[str, asyncio.Event] = {}  # notify msg_id -> NotifyResp seen

    # ---- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected (reconnecting after a drop or a reboot) until cancelled."""
        run_mtp = {
            "mqtt": self._run_mqtt,
            "websocket": self._run_websocket,
            "websocket-server": self._serve_websocket,
        }[self.config.mtp]
        while not self._stopping:
            try:
                await run_mtp()
            except (aiomqtt.MqttError, OSError, ConnectionClosed, InvalidStatus) as exc:
                log.debug("sim %s: %s", self.config.endpoint_id, exc)
            finally:
                self.connected.clear()
                self._send = self._close = None
            delay = self.config.reboot_s if self._reconnect.is_set() else self.config.retry_s
            self._reconnect.clear()
            await asyncio.sleep(delay)

    async def _started(self, connect_record: bytes) -> None:
        await self._send(connect_record)
        self.connected.set()
        await self._send_boot()

    # ---- MQTT ------------------------------------------------------------------------

    async def _run_mqtt(self) -> None:
        cfg = self.config
        address = mqtt_topics.broker_address(cfg.mqtt_url)
        if cfg.username:
            address = replace(address, username=cfg.username, password=cfg.password)
        will_payload = records.encode_disconnect(
            to_id=cfg.controller_id,
            from_id=cfg.endpoint_id,
            reason="agent lost its MQTT connection",
        )

        def will(v5: bool) -> aiomqtt.Will:
            if v5:
                return aiomqtt.Will(
                    cfg.publish_topic, will_payload, properties=self._publish_props()
                )
            return aiomqtt.Will(
                mqtt_topics.publish_topic_v311(cfg.publish_topic, cfg.agent_topic), will_payload
            )

        client, v5 = await _mqtt_connect_remembered(
            address,
            cfg.mqtt_version,
            endpoint_id=cfg.endpoint_id,
            identifier=cfg.endpoint_id,
            will=will,
            tls=cfg.tls_context() if address.tls else None,
        )
        try:
            await client.subscribe(mqtt_topics.subscription_filter(cfg.agent_topic))
            controller_topic = cfg.publish_topic

            async def send(data: bytes) -> None:
                if v5:
                    await client.publish(controller_topic, data, properties=self._publish_props())
                else:
                    await client.publish(
                        mqtt_topics.publish_topic_v311(controller_topic, cfg.agent_topic), data
                    )

            async def close() -> None:
                await client.__aexit__(None, None, None)

            def drop() -> None:
                # A TCP shutdown without MQTT DISCONNECT: the broker publishes the Will.
                # (shutdown, not close: the socket stays registered with the event loop.)
                client._client.socket().shutdown(socket.SHUT_RDWR)  # noqa: SLF001

            self._send, self._close, self._drop = send, close, drop
            await self._started(
                records.encode_mqtt_connect(
                    to_id=cfg.controller_id, from_id=cfg.endpoint_id, v5=v5, topic=cfg.agent_topic
                )
            )
            async for message in client.messages:
                reply_to = getattr(message.properties, "ResponseTopic", None) if v5 else None
                reply_to = reply_to or mqtt_topics.reply_to_from_topic(message.topic.value)
                if reply_to:
                    controller_topic = reply_to
                self._spawn(self._on_record(message.payload))
        finally:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)

    def _publish_props(self) -> Properties:
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.config.agent_topic
        props.ContentType = mqtt_topics.CONTENT_TYPE
        return props

    # ---- WebSocket ---------------------------------------------------------------------

    async def _run_websocket(self) -> None:
        cfg = self.config
        headers = {ws_extension.HEADER: ws_extension.extension_header(cfg.endpoint_id)}
        if cfg.username:
            token = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with ws_connect(
            cfg.ws_url,
            ssl=cfg.tls_context() if cfg.ws_url.startswith("wss:") else None,
            subprotocols=[ws_extension.SUBPROTOCOL],
            additional_headers=headers,
            create_connection=ws_extension.UspClientConnection,
            compression=None,
            max_size=records.MAX_RECORD_BYTES,
            open_timeout=10,
        ) as connection:
            self._send = connection.send
            self._close = connection.close
            self._drop = connection.transport.abort
            await self._started(
                records.encode_websocket_connect(to_id=cfg.controller_id, from_id=cfg.endpoint_id)
            )
            async for frame in connection:
                if isinstance(frame, bytes):
                    self._spawn(self._on_record(frame))

    async def _serve_websocket(self) -> None:
        """Run a WebSocket server and take one controller connection at a time."""
        cfg = self.config
        done = asyncio.get_running_loop().create_future()

        def refuse(connection, request):  # noqa: ANN001, ANN202
            if self.hooks.refuse_handshakes > 0:
                self.hooks.refuse_handshakes -= 1
                return connection.respond(403, "not now\n")
            return None

        def answer_extension(connection, request, response) -> None:  # noqa: ANN001
            ws_extension.take_endpoint_id(request.headers)
            response.headers[ws_extension.HEADER] = ws_extension.extension_header(cfg.endpoint_id)

        async def session(connection) -> None:  # noqa: ANN001
            self._send, self._close = connection.send, connection.close
            await self._started(
                records.encode_websocket_connect(to_id=cfg.controller_id, from_id=cfg.endpoint_id)
            )
            async for frame in connection:
                if isinstance(frame, bytes):
                    self._spawn(self._on_record(frame))
            self.connected.clear()

        async with ws_serve(
            session,
            "127.0.0.1",
            cfg.ws_listen_port,
            subprotocols=[ws_extension.SUBPROTOCOL],
            compression=None,
            process_request=refuse,
            process_response=answer_extension,
        ) as server:
            cfg.ws_listen_port = server.sockets[0].getsockname()[1]
            self.listening.set()
            await done  # until the agent task is cancelled

    # ---- records and messages ----------------------------------------------------------

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send_msg(self, msg: Msg) -> None:
        if self._send is None:
            raise ConnectionError("agent is not connected")
        await self._send(
            records.encode_msg_record(
                msg, to_id=self.config.controller_id, from_id=self.config.endpoint_id
            )
        )

    async def _on_record(self, data: bytes) -> None:
        try:
            record = records.decode_record(data)
            msg = records.decode_record_msg(record)
        except RecordError as exc:
            log.warning("sim %s: dropped a record: %s", self.config.endpoint_id, exc)
            return
        if record.to_id != self.config.endpoint_id:
            return
        kind = messages.response_kind(msg)
        if kind == "notify_resp":
            self.notify_responses.append(msg.body.response.notify_resp.subscription_id)
            answered = self._awaiting_resp.get(msg.header.msg_id)
            if answered is not None:
                answered.set()
            return
        if kind is not None:
            return
        await self._on_request(msg)

    async def _on_request(self, msg: Msg) -> None:
        if self.hooks.disconnect_on_request and self._close is not None:
            await self._close()
            return
        if self.hooks.silent:
            return
        delay = max((self.hooks.delays.get(p, 0.0) for p in _requested_paths(msg)), default=0.0)
        if delay:
            await asyncio.sleep(delay)
        response, effects = usp_requests.handle_request(self.dm, msg)
        if response is not None:
            with contextlib.suppress(ConnectionError, ConnectionClosed, aiomqtt.MqttError):
                await self.send_msg(response)
        await self._carry_out(effects)

    async def _carry_out(self, effects: usp_requests.Effects) -> None:
        for change in effects.changed:
            await self._value_changed(change)
        for request_obj, command, key, inputs in effects.async_commands:
            self._spawn(self._complete_async(request_obj, command, key, inputs))
        if effects.reboot_command_key is not None:
            await self.reboot(effects.reboot_command_key)

    async def reboot(self, command_key: str, into_image: str | None = None) -> None:
        """Boot again (Device.Reboot(), or into the firmware image ``into_image``):
        reconnect, then a Boot! event with the command key."""
        self.boot_cause, self.boot_command_key = "RemoteReboot", command_key
        self.firmware_updated = into_image is not None
        self._reconnect.set()
        await asyncio.sleep(0.02)  # let the OperateResp / notifications leave first
        if self._close is not None:
            await self._close()
        if into_image is not None:  # while down: it comes back running the new image
            usp_firmware.activate(self.dm, into_image)

    # ---- notifications -----------------------------------------------------------------

    def _next_id(self) -> str:
        self._msg_counter += 1
        return f"{self.config.serial}-notify-{self._msg_counter}"

    async def notify(self, subscription_id: str, send_resp: bool, **notification: dict) -> None:
        msg = messages.request(
            "notify",
            self._next_id(),
            subscription_id=subscription_id,
            send_resp=send_resp,
            **notification,
        )
        with contextlib.suppress(ConnectionError, ConnectionClosed, aiomqtt.MqttError):
            await self.send_msg(msg)
        if send_resp:
            self._spawn(self._retry_until_answered(msg))

    async def _retry_until_answered(self, msg: Msg) -> None:
        """As TR-369 agents do, send a Notify that asked for a response again
        (same msg_id, growing waits) until its NotifyResp arrives: a Boot! sent
        before the controller subscribed (MQTT QoS 0 drops it) still registers."""
        answered = self._awaiting_resp.setdefault(msg.header.msg_id, asyncio.Event())
        wait = self.config.notify_retry_s
        try:
            while not self._stopping:
                try:
                    await asyncio.wait_for(answered.wait(), wait)
                    return
                except TimeoutError:
                    pass
                with contextlib.suppress(ConnectionError, ConnectionClosed, aiomqtt.MqttError):
                    await self.send_msg(msg)
                wait = min(wait * 2, NOTIFY_RETRY_MAX_S)
        finally:
            self._awaiting_resp.pop(msg.header.msg_id, None)

    async def _send_boot(self) -> None:
        await self.notify(
            BOOT_SUBSCRIPTION,
            True,
            event={
                "obj_path": "Device.",
                "event_name": "Boot!",
                "params": {
                    "CommandKey": self.boot_command_key,
                    "Cause": self.boot_cause,
                    "FirmwareUpdated": "true" if self.firmware_updated else "false",
                    "ParameterMap": json.dumps(
                        {
                            "Device.DeviceInfo.SoftwareVersion": self.dm.values[
                                "Device.DeviceInfo.SoftwareVersion"
                            ]
                        }
                    ),
                },
            },
        )
        self.boot_cause, self.boot_command_key = "LocalReboot", ""
        self.firmware_updated = False

    async def _complete_async(self, request_obj: str, command: str, key: str, inputs: dict) -> None:
        await asyncio.sleep(0.05)
        if usp_firmware.handles(command):
            await self._firmware(request_obj, command, key, inputs)
            return
        output = usp_requests.async_command_output(command, inputs)
        self.dm.delete_object(request_obj)
        await self._operation_complete(command, key, {"req_output_args": {"output_args": output}})

    async def _operation_complete(self, command: str, key: str, outcome: dict) -> None:
        obj, name = command.rsplit(".", 1)
        await self.notify(
            OPERATION_SUBSCRIPTION,
            False,
            oper_complete={"obj_path": obj + ".", "command_name": name, "command_key": key}
            | outcome,
        )

    async def _firmware(self, request_obj: str, command: str, key: str, inputs: dict) -> None:
        """FirmwareImage.{i}.Download() / Activate() (usp_firmware.py)."""
        outcome = await usp_firmware.run(self.dm, command, inputs)
        self.dm.delete_object(request_obj)
        if outcome.error is not None:
            code, message = outcome.error
            result = {"cmd_failure": {"err_code": code, "err_msg": message}}
        else:
            result = {"req_output_args": {"output_args": {}}}
        await self._operation_complete(command, key, result)
        if command.endswith("Download()"):
            params = usp_firmware.transfer_complete(command, key, inputs, outcome)
            await self.send_event("Device.LocalAgent.", usp_firmware.TRANSFER_COMPLETE, params)
        if outcome.activate is not None:
            await self.reboot(key, into_image=outcome.activate)

    async def send_event(self, obj_path: str, name: str, params: dict[str, str]) -> None:
        """An Event notification to each enabled subscription that names it."""
        event = obj_path + name
        for sub in self.dm.instances("Device.LocalAgent.Subscription."):
            values = self.dm.object_params(sub)
            refs = [r.strip() for r in values["ReferenceList"].split(",")]
            if values["Enable"] == "true" and values["NotifType"] == "Event" and event in refs:
                await self.notify(
                    values["ID"],
                    values["NotifRetry"] == "true",
                    event={"obj_path": obj_path, "event_name": name, "params": params},
                )

    async def change_value(self, path: str, value: str) -> None:
        """A local change (a user on the device's web UI): ValueChange notifications follow."""
        self.dm.values[path] = value
        await self._value_changed(path)

    async def _value_changed(self, path: str) -> None:
        for sub in self.dm.instances("Device.LocalAgent.Subscription."):
            values = self.dm.object_params(sub)
            if values["Enable"] != "true" or values["NotifType"] != "ValueChange":
                continue
            refs = [r.strip() for r in values["ReferenceList"].split(",") if r.strip()]
            if any(path == r or (r.endswith(".") and path.startswith(r)) for r in refs):
                await self.notify(
                    values["ID"],
                    values["NotifRetry"] == "true",
                    value_change={"param_path": path, "param_value": self.dm.values.get(path, "")},
                )

    def drop_connection(self) -> None:
        """Lose the connection as a power cut would: no DisconnectRecord, no MQTT
        DISCONNECT (the broker publishes the agent's Will). The agent reconnects."""
        if self._drop is not None:
            self._drop()

    async def stop(self) -> None:
        """Leave as an agent does: a DisconnectRecord, then close the MTP connection."""
        self._stopping = True
        if self._send is not None:
            with contextlib.suppress(Exception):
                await self._send(
                    records.encode_disconnect(
                        to_id=self.config.controller_id,
                        from_id=self.config.endpoint_id,
                        reason="agent shutting down",
                    )
                )
        for task in list(self._tasks):
            task.cancel()
        if self._close is not None:
            with contextlib.suppress(Exception):
                await self._close()


def _requested_paths(msg: Msg) -> list[str]:
    req = msg.body.request
    kind = req.WhichOneof("req_type")
    if kind == "get":
        return list(req.get.param_paths)
    if kind == "operate":
        return [req.operate.command]
    return []


async def run_fleet(agents: list[SimAgent], *, connect_concurrency: int = 50) -> None:
    """Run many agents in this process, connecting at most ``connect_concurrency`` at once.
    The first MQTT agent of version "auto" connects alone: the other MQTT agents then
    use the version the broker accepted, rather than each probing MQTT 5 at once."""
    gate = asyncio.Semaphore(connect_concurrency)
    probe = next(
        (a for a in agents if a.config.mtp == "mqtt" and a.config.mqtt_version == "auto"), None
    )
    probed = asyncio.Event()
    if probe is None:
        probed.set()

    async def start(agent: SimAgent) -> None:
        if agent is not probe and agent.config.mtp == "mqtt":
            await probed.wait()
        async with gate:
            task = asyncio.get_running_loop().create_task(agent.run())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(agent.connected.wait(), 10)
        if agent is probe:
            probed.set()
        await task

    await asyncio.gather(*(start(agent) for agent in agents))
