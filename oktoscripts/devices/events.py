"""The new-device event: published once per device insert, on JetStream.

The registry publishes through an *announcer* only when its upsert really
inserted the document (MongoDB's ``upserted_id``; with the unique serial index
two processes racing on the same new device produce one insert). The
document carries ``announce_pending`` from the insert until JetStream
acknowledged the event, so a process that dies in between leaves a trace
that ``DeviceRegistry.announce_pending()`` publishes later. The message id is
the document's ``_id``: JetStream drops a repeat within its duplicate window,
and a device deleted and registered again has a new ``_id``, hence a new
event.

Listeners (``listen_to_new_device``) read the stream through their own pull
consumer (oktoscripts.bus.listening).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from nats.aio.client import Client
from nats.js import JetStreamContext, api

from oktoscripts.bus import listening, streams, subjects

log = logging.getLogger(__name__)

# Long enough for any listener that was briefly disconnected; short enough to
# keep the store small (a listener starts at "new" anyway).
MAX_AGE_S = 24 * 3600
DUPLICATE_WINDOW_S = 300.0


def new_device_subject() -> str:
    return subjects.new_devices()


def stream_name() -> str:
    return subjects.stream_name(subjects.NEW_DEVICES_STREAM)


async def ensure_stream(js: JetStreamContext) -> str:
    """Create the stream of new-device events if needed (idempotent)."""
    name = stream_name()
    config = api.StreamConfig(
        name=name,
        subjects=[new_device_subject()],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=MAX_AGE_S,
        duplicate_window=DUPLICATE_WINDOW_S,
    )
    await streams.ensure_stream(js, config)
    return name


def event_payload(device: dict[str, Any], protocol: str) -> bytes:
    return json.dumps({"device": device, "protocol": protocol}).encode()


async def publish(js: JetStreamContext, device: dict[str, Any], protocol: str, msg_id: str) -> None:
    await js.publish(
        new_device_subject(),
        event_payload(device, protocol),
        headers={"Nats-Msg-Id": msg_id},
        timeout=5.0,
    )


class Announcer(Protocol):
    """Where the registry sends new-device events. ``announce`` must not block
    long; it calls ``done()`` (from any thread; it does not block) once
    JetStream stored the event."""

    def announce(
        self, device: dict[str, Any], protocol: str, msg_id: str, done: Callable[[], None]
    ) -> None: ...


class LoopAnnouncer:
    """Publishes on a connected client's asyncio loop; callable from any thread
    (the ACS calls the registry from worker threads or from the loop itself)."""

    def __init__(self, nc: Client, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._nc = nc
        self._loop = loop or asyncio.get_running_loop()
        self._stream_ready = False

    def announce(
        self, device: dict[str, Any], protocol: str, msg_id: str, done: Callable[[], None]
    ) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(
            self._publish(device, protocol, msg_id, done), self._loop
        )

    async def _publish(
        self, device: dict[str, Any], protocol: str, msg_id: str, done: Callable[[], None]
    ) -> None:
        js = self._nc.jetstream()
        try:
            if not self._stream_ready:
                await ensure_stream(js)
                self._stream_ready = True
            await publish(js, device, protocol, msg_id)
        except Exception as exc:  # the pending flag stays; announce_pending() retries
            log.warning("new-device event for %s not published yet: %s", device.get("sn"), exc)
            return
        done()  # cheap: the registry clears the flags later, in bulk, off the loop


class BlockingAnnouncer:
    """For synchronous processes (management commands, tools, tests): publishes
    on the process's background NATS connection and waits for the ack."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._stream_ready = False

    def announce(
        self, device: dict[str, Any], protocol: str, msg_id: str, done: Callable[[], None]
    ) -> None:
        from oktoscripts.bus import blocking

        async def send(nc: Client) -> None:
            js = nc.jetstream()
            if not self._stream_ready:
                await ensure_stream(js)
                self._stream_ready = True
            await publish(js, device, protocol, msg_id)

        try:
            blocking.call(send, timeout=self._timeout)
        except Exception as exc:  # the pending flag stays; announce_pending() retries
            log.warning("new-device event for %s not published yet: %s", device.get("sn"), exc)
            return
        done()


def _device_of(data: bytes) -> dict[str, Any]:
    return json.loads(data)["device"]


async def new_device_source(nc: Client, durable: str | None = None) -> listening.StreamSource:
    """Device tables of devices inserted from now on (or, for a named listener,
    since its last run stopped), in order, none lost. The consumer exists when
    this returns, so an insert that happens after it is always delivered."""
    js = nc.jetstream()
    await ensure_stream(js)
    return await listening.subscribe(
        js, stream_name(), new_device_subject(), durable=durable, decode=_device_of
    )


async def new_device_events(nc: Client) -> AsyncIterator[dict[str, Any]]:
    """new_device_source() as an async iterator; closing it unsubscribes."""
    return listening.iterate(await new_device_source(nc))
