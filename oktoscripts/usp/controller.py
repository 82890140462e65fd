"""The USP controller: its agents' links, requests matched to responses by
msg_id, and what it does with the Records agents send.

It is MTP-agnostic: the MQTT and WebSocket MTPs hand it the bytes of every
Record they receive (``on_record``) with a ``RecordSource`` saying how to
answer the sender, and tell it when an agent's connection comes and goes.
Registration in the device registry (registration.py) and the NATS service
that workers call (service.py) sit on top of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from oktoscripts.metrics import series
from oktoscripts.usp import messages, records
from oktoscripts.usp.messages import Msg
from oktoscripts.usp.records import RecordError

log = logging.getLogger(__name__)

NOTIFY_QUEUE_SIZE = 10_000
LOG_EVERY_S = 5.0
MAX_LOG_KEYS = 10_000


@dataclass(eq=False)
class AgentLink:
    """How to reach one agent right now."""

    endpoint_id: str
    mtp: str  # "mqtt" | "websocket"
    send: Callable[[bytes], Awaitable[None]]
    address: dict[str, Any] = field(default_factory=dict)  # {"topic": ...} / {"peer": ...}
    close: Callable[[], Awaitable[None]] | None = None  # ends a connection-based link
    # False for a route remembered from before (the registry's MQTT topic after a
    # restart): the first record over it proves the agent is there, and counts.
    confirmed: bool = True

    def same_route(self, other: AgentLink) -> bool:
        return self.mtp == other.mtp and self.address == other.address


class RecordSource(Protocol):
    """The MTP side of one received Record."""

    def link_for(self, from_id: str) -> AgentLink | None:
        """The link to answer ``from_id``, or None if this MTP cannot vouch for it
        (a WebSocket peer claiming another agent's Endpoint ID)."""

    async def bad_record(self, reason: str) -> None:
        """The Record could not be read (the WebSocket MTP closes with 1003)."""


class AgentUnavailable(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RateLimitedLog:
    """Logs a repeated warning at most every LOG_EVERY_S, with the count since."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def warning(self, key: str, text: str, *args: object) -> None:
        if len(self._last) > MAX_LOG_KEYS:  # keys chosen by senders: never let them pile up
            self._last.clear()
            self._count.clear()
        self._count[key] = self._count.get(key, 0) + 1
        now = time.monotonic()
        if now - self._last.get(key, 0.0) >= LOG_EVERY_S:
            count = self._count.pop(key)
            self._last[key] = now
            log.warning(text + (f" ({count} times)" if count > 1 else ""), *args)


class Controller:
    """One USP controller endpoint."""

    def __init__(self, endpoint_id: str) -> None:
        self.endpoint_id = endpoint_id
        self.links: dict[str, AgentLink] = {}
        self.pending: dict[tuple[str, str], asyncio.Future[Msg]] = {}
        self.stats: dict[str, int] = {}
        self.notifications: asyncio.Queue[dict] = asyncio.Queue(NOTIFY_QUEUE_SIZE)
        self.limited_log = RateLimitedLog()
        self._background: set[asyncio.Task] = set()
        # Hooks set by the layers above (registration, NATS service, MQTT MTP).
        self.on_agent_seen: Callable[[AgentLink, str, Msg | None], None] | None = None
        self.on_agent_gone: Callable[[str, str], None] | None = None
        self.link_loader: Callable[[str], Awaitable[AgentLink | None]] | None = None
        self.unknown_agent_code: Callable[[str], Awaitable[str]] | None = None
        self.on_heard: Callable[[AgentLink], None] | None = None  # every record (liveness)
        series.watch(series.USP_AGENTS_CONNECTED, lambda: len(self.links))

    def _count(self, name: str) -> None:
        self.stats[name] = self.stats.get(name, 0) + 1

    # ---- connections ------------------------------------------------------------------

    def agent_connected(self, link: AgentLink, reason: str = "mtp-connect") -> None:
        """An MTP has a (new) route to an agent."""
        previous = self.links.get(link.endpoint_id)
        if (
            previous is not None
            and reason == "record"
            and previous.confirmed
            and previous.same_route(link)
        ):
            return  # the usual case: one more record over the route we know
        self.links[link.endpoint_id] = link
        if (
            previous is not None
            and previous is not link
            and previous.mtp == link.mtp
            and previous.close is not None
        ):
            # One session per agent and MTP (R-WS.4): the newer connection wins.
            task = asyncio.get_running_loop().create_task(previous.close())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if self.on_agent_seen:
            self.on_agent_seen(link, reason, None)

    def agent_disconnected(self, link: AgentLink, reason: str = "") -> None:
        """The route ``link`` is gone; requests waiting on it get an error now."""
        if self.links.get(link.endpoint_id) is not link:
            return  # a newer connection of the same agent replaced it
        del self.links[link.endpoint_id]
        self._fail_pending(
            link.endpoint_id,
            "503",
            f"agent {link.endpoint_id} disconnected" + (f" ({reason})" if reason else ""),
        )
        log.info("usp: agent %s disconnected from %s", link.endpoint_id, link.mtp)
        if self.on_agent_gone:
            self.on_agent_gone(link.endpoint_id, link.mtp)

    def forget(self, link: AgentLink) -> None:
        """Drop a route learnt from a record, without marking anything offline."""
        if self.links.get(link.endpoint_id) is link:
            del self.links[link.endpoint_id]

    def _fail_pending(self, endpoint_id: str, code: str, message: str) -> None:
        for (eid, _), future in list(self.pending.items()):
            if eid == endpoint_id and not future.done():
                future.set_exception(AgentUnavailable(code, message))

    # ---- requests to agents -------------------------------------------------------------

    async def _link(self, to_id: str) -> AgentLink:
        link = self.links.get(to_id)
        if link is None and self.link_loader is not None:
            link = await self.link_loader(to_id)
            if link is not None:
                self.links.setdefault(to_id, link)
        if link is None:
            code = await self.unknown_agent_code(to_id) if self.unknown_agent_code else "404"
            text = "is not connected" if code == "503" else "is not known to this controller"
            raise AgentUnavailable(code, f"USP agent {to_id} {text}")
        return link

    async def request(
        self, to_id: str, msg: Msg, timeout_s: float, expect_response: bool = True
    ) -> Msg | None:
        """Send ``msg`` to an agent and wait for the response with the same msg_id.
        Raises AgentUnavailable (unknown, offline, disconnected) or TimeoutError."""
        link = await self._link(to_id)
        key = (to_id, msg.header.msg_id)
        if key in self.pending:
            raise AgentUnavailable(
                "409",
                f"a request with msg_id {key[1]} to {to_id} is already waiting for its response",
            )
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        if expect_response:
            self.pending[key] = future
        try:
            data = records.encode_msg_record(msg, to_id=to_id, from_id=self.endpoint_id)
            try:
                await link.send(data)
            except Exception as exc:  # the connection broke under us
                raise AgentUnavailable("503", f"cannot send to {to_id}: {exc}") from None
            self._count("requests_sent")
            series.usp_message("out", messages.request_kind(msg))
            if not expect_response:
                return None
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            if self.pending.get(key) is future:
                del self.pending[key]

    # ---- records from agents -----------------------------------------------------------

    async def on_record(self, data: bytes, source: RecordSource) -> None:
        """Handle one received Record. Never raises: a bad Record is logged and dropped."""
        try:
            record = records.decode_record(data)
        except RecordError as exc:
            self._count("bad_records")
            self.limited_log.warning("bad-record", "usp: dropped a record: %s", exc)
            await source.bad_record(str(exc))
            return
        if record.to_id != self.endpoint_id:
            self._count("wrong_to_id")
            self.limited_log.warning(
                "to-id",
                "usp: dropped a record for %s from %s (we are %s)",
                record.to_id,
                record.from_id,
                self.endpoint_id,
            )
            return
        link = source.link_for(record.from_id)
        if link is None:
            self._count("unroutable")
            self.limited_log.warning(
                "from-id",
                "usp: dropped a record from %s: no route back or not the connected endpoint",
                record.from_id,
            )
            return
        kind = record.WhichOneof("record_type")
        if self.on_heard is not None and kind != "disconnect":
            self.on_heard(link)
        if kind == "disconnect":
            self.agent_disconnected(self.links.get(record.from_id, link), record.disconnect.reason)
            return
        if kind.endswith("_connect"):
            self.agent_connected(link, kind)
            return
        try:
            msg = records.decode_record_msg(record)
        except RecordError as exc:
            self._count("bad_records")
            self.limited_log.warning(
                "bad-msg", "usp: dropped a record from %s: %s", record.from_id, exc
            )
            await source.bad_record(str(exc))
            return
        self.agent_connected(link, "record")
        await self._on_msg(link, msg)

    async def _on_msg(self, link: AgentLink, msg: Msg) -> None:
        series.usp_message("in", messages.request_kind(msg) or messages.response_kind(msg))
        if messages.response_kind(msg) is not None:
            future = self.pending.get((link.endpoint_id, msg.header.msg_id))
            if future is None or future.done():
                self._count("unmatched_responses")
                self.limited_log.warning(
                    "unmatched",
                    "usp: response %s from %s matches no waiting request",
                    msg.header.msg_id,
                    link.endpoint_id,
                )
                return
            future.set_result(msg)
            return
        kind = messages.request_kind(msg)
        if kind == "notify":
            await self._on_notify(link, msg)
        elif kind in ("register", "deregister"):
            await self._answer(link, _accept_registration(msg, kind))
        else:
            await self._answer(
                link, messages.error_to(msg, 7001, f"a controller does not answer {kind} requests")
            )

    async def _answer(self, link: AgentLink, msg: Msg) -> None:
        data = records.encode_msg_record(msg, to_id=link.endpoint_id, from_id=self.endpoint_id)
        try:
            await link.send(data)
        except Exception as exc:
            log.warning("usp: cannot answer %s: %s", link.endpoint_id, exc)
            return
        series.usp_message("out", messages.response_kind(msg))

    async def _on_notify(self, link: AgentLink, msg: Msg) -> None:
        notify = msg.body.request.notify
        self._count("notifications")
        if notify.send_resp:
            await self._answer(link, messages.notify_resp(msg))
        kind = notify.WhichOneof("notification")
        if kind == "on_board_req" or (kind == "event" and notify.event.event_name == "Boot!"):
            if self.on_agent_seen:
                self.on_agent_seen(link, "boot" if kind == "event" else "onboard", msg)
        event = {
            "endpoint_id": link.endpoint_id,
            "subscription_id": notify.subscription_id,
            "type": kind,
            "notification": messages.msg_to_dict(getattr(notify, kind)) if kind else {},
            "time": time.time(),
        }
        try:
            self.notifications.put_nowait(event)
        except asyncio.QueueFull:
            self._count("notifications_dropped")
            self.limited_log.warning(
                "notify-flood",
                "usp: notification queue full, dropped a notification from %s",
                link.endpoint_id,
            )


def _accept_registration(msg: Msg, kind: str) -> Msg:
    """Register/Deregister (USP 1.3 Service Elements): accepted, nothing routed yet."""
    response, body = messages.response_to(msg, kind)
    if kind == "register":
        for reg in msg.body.request.register.reg_paths:
            result = body.registered_path_results.add(requested_path=reg.path)
            result.oper_status.oper_success.registered_path = reg.path
    else:
        for path in msg.body.request.deregister.paths:
            result = body.deregistered_path_results.add(requested_path=path)
            result.oper_status.oper_success.deregistered_path.append(path)
    return response


def notification_payload(event: dict) -> bytes:
    return json.dumps(event).encode()
