"""Event sources of listeners: JetStream pull consumers, one ack per handled event.

A listener (``listen_to_cwmp_event``, ``listen_to_new_device``) takes events
from a stream through its own pull consumer. It fetches only as many events as
it has free callback slots, and acknowledges each one after its callback
returned, so an event is never taken off the stream before it was handled.

A run of a deployed listener names its consumers (``durable``): when the run
is lost with its worker, the replacement run binds the same consumers, finds
the events published meanwhile waiting, and gets the events the dead run held
but never acknowledged redelivered after ``ACK_WAIT_S``. A run that is not
deployed gets consumers that start at "now" and expire after it is gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from oktoscripts.bus import retry, streams

log = logging.getLogger(__name__)

# An event held this long without an ack goes to another puller of the consumer.
# Callbacks that run longer keep their events with keep_alive().
ACK_WAIT_S = 30.0
KEEP_ALIVE_S = ACK_WAIT_S / 3
# How long the consumer of a gone listener is kept: a run's own consumers
# briefly, a deployment's long enough to outlive any restart.
EPHEMERAL_IDLE_S = 300.0
DURABLE_IDLE_S = 24 * 3600.0
FETCH_WAIT_S = 5.0
# Stream sequences a source remembers, to never hand out a redelivery of an
# event it already handed out.
REMEMBERED = 4096


class Delivery:
    """One event taken from a stream: ``data`` for the callback, then ``ack()``."""

    __slots__ = ("data", "_msg")

    def __init__(self, data: Any, msg: Msg) -> None:
        self.data = data
        self._msg = msg

    async def ack(self) -> None:
        try:
            await self._msg.ack()
        except Exception as exc:  # noqa: BLE001 - redelivered later; the listener goes on
            log.warning("could not acknowledge event on %s: %s", self._msg.subject, exc)

    async def keep_alive(self) -> None:
        """The event is still being handled: restart its ack timer."""
        try:
            await self._msg.in_progress()
        except Exception:  # noqa: BLE001 - the connection is gone; nothing to keep
            pass


class EventSource(Protocol):
    """What a listener reads: batches of events (plain values or Deliveries)."""

    async def next_batch(self, limit: int) -> list[Any]:
        """At least one and at most ``limit`` events; [] when the source ended."""
        ...

    async def aclose(self) -> None: ...


class IteratorSource:
    """An async iterator of events as an EventSource (one event per batch)."""

    def __init__(self, iterator: AsyncIterator[Any]) -> None:
        self._iterator = iterator

    async def next_batch(self, limit: int) -> list[Any]:
        try:
            return [await anext(self._iterator)]
        except StopAsyncIteration:
            return []

    async def aclose(self) -> None:
        closer = getattr(self._iterator, "aclose", None)
        if closer is not None:
            await closer()


def as_event_source(source: Any) -> EventSource:
    return source if hasattr(source, "next_batch") else IteratorSource(source)


class StreamSource:
    """A listener's pull consumer on a JetStream stream."""

    def __init__(self, psub: Any, decode: Callable[[bytes], Any]) -> None:
        self._psub = psub
        self._decode = decode
        self._seen: OrderedDict[int, None] = OrderedDict()

    async def next_batch(self, limit: int) -> list[Any]:
        while True:
            try:
                msgs = await self._psub.fetch(max(1, limit), timeout=FETCH_WAIT_S)
            except TimeoutError:  # nats.errors.TimeoutError is one too
                continue
            except retry.TRANSIENT:  # the consumer's leader lost, a new one being elected
                await asyncio.sleep(retry.PAUSE_S)
                continue
            batch = [delivery for msg in msgs if (delivery := await self._take(msg))]
            if batch:
                return batch

    async def _take(self, msg: Msg) -> Delivery | None:
        seq = msg.metadata.sequence.stream
        if seq in self._seen:
            return None  # a redelivery of an event this listener holds or handled
        self._seen[seq] = None
        if len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        try:
            data = self._decode(msg.data)
        except (ValueError, KeyError, TypeError):
            log.warning("malformed event on %s skipped: %r", msg.subject, msg.data[:200])
            await msg.ack()
            return None
        return Delivery(data, msg)

    async def aclose(self) -> None:
        try:
            await self._psub.unsubscribe()
        except Exception:  # noqa: BLE001 - the consumer also expires by itself
            pass


def consumer_name(durable: str, subject: str) -> str:
    """The consumer of a named listener: a different filter gets another consumer."""
    return f"{durable}-{zlib.crc32(subject.encode()):08x}"


async def subscribe(
    js: JetStreamContext,
    stream: str,
    subject: str,
    *,
    durable: str | None = None,
    decode: Callable[[bytes], Any] = json.loads,
) -> StreamSource:
    """A source of the events on ``subject`` from now on (or, for a durable
    consumer that exists already, from where its last reader stopped). The
    consumer exists when this returns: a later event is always delivered."""
    config = api.ConsumerConfig(
        deliver_policy=api.DeliverPolicy.NEW,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT_S,
        max_ack_pending=10_000,
        inactive_threshold=DURABLE_IDLE_S if durable else EPHEMERAL_IDLE_S,
        # A durable consumer has its stream's replicas; JetStream would keep
        # an unnamed one on one server only, and lose it with that server.
        num_replicas=None if durable else streams.replicas(),
    )
    name = consumer_name(durable, subject) if durable else None
    psub = await js.pull_subscribe(subject, durable=name, stream=stream, config=config)
    return StreamSource(psub, decode)


async def iterate(source: StreamSource) -> AsyncIterator[Any]:
    """The events of a source one by one, each acknowledged when the next is
    asked for (for Python listeners: tools and tests)."""
    try:
        while True:
            for delivery in await source.next_batch(64):
                yield delivery.data
                await delivery.ack()
    finally:
        await source.aclose()
