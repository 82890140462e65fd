"""CWMP Inform events on NATS JetStream.

Each EventStruct of each Inform becomes one message on
``<prefix>.cwmp.event.<code>.<serial>`` in the stream CWMP_EVENTS_STREAM, so a
listener filters by code and serial with a subject filter, and a slow listener
loses nothing: it reads the stream at its own pace through its own consumer.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime

from nats.js import JetStreamContext, api

from oktoscripts.bus import listening, streams, subjects
from oktoscripts.bus.retry import retrying
from oktoscripts.cwmp.soap import EventStruct

log = logging.getLogger(__name__)

EVENT_MAX_AGE_S = 24 * 3600
# TR-069 A.3.3.1: the Event argument of an Inform is an EventStruct[64].
MAX_EVENTS_PER_INFORM = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def token(text: str) -> str:
    """A subject token for any text: [A-Za-z0-9_-] kept, every other byte ~XX."""
    return _UNSAFE.sub(lambda m: "".join(f"~{b:02X}" for b in m.group().encode()), text) or "~"


def stream() -> str:
    return subjects.stream_name(subjects.CWMP_EVENTS_STREAM)


async def ensure_stream(js: JetStreamContext) -> None:
    config = api.StreamConfig(
        name=stream(),
        subjects=[subjects.subject("cwmp", "event", ">")],
        storage=api.StorageType.FILE,
        max_age=EVENT_MAX_AGE_S,
    )
    await streams.ensure_stream(js, config)


def distinct(events: list[EventStruct]) -> list[EventStruct]:
    """The events of one Inform as TR-069 allows them: each numbered event
    ("1 BOOT") once, whatever its CommandKey (they are all single events,
    TR-069 3.7.1.5); each "M ..." or vendor event once per CommandKey; at
    most 64 in all, in the CPE's order. A CPE sending more is broken or
    hostile: what is beyond is dropped rather than faulted, because a fault
    to an Inform makes the CPE send the same Inform again, forever."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for event in events:
        key = (event.number, "") if event.number.isdigit() else (event.code, event.command_key)
        if key not in seen:
            seen.add(key)
            kept.append(event)
            if len(kept) == MAX_EVENTS_PER_INFORM:
                break
    return kept


def event_message(serial: str, event: EventStruct, when: datetime | None = None) -> dict:
    """The event as listeners see it (``ev`` of listen_to_cwmp_event)."""
    return {
        "serial_number": serial,
        "event": event.number,
        "event_name": event.name,
        "code": event.code,
        "command_key": event.command_key,
        "timestamp": (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


async def publish(js: JetStreamContext, serial: str, events: list[EventStruct]) -> None:
    """Publish and wait for JetStream to store each event (in Inform order).
    While the stream elects a leader (a NATS server of a cluster lost) each
    event is sent again, under one message id so that it is stored once."""
    now = datetime.now(UTC)
    for event in events:
        subject = subjects.cwmp_event(token(event.number), token(serial))
        data = json.dumps(event_message(serial, event, now)).encode()
        headers = {"Nats-Msg-Id": uuid.uuid4().hex}
        await retrying(lambda: js.publish(subject, data, headers=headers))  # noqa: B023 - awaited here


def normalise_event_filter(event: str | None) -> str | None:
    """ "1", "1 BOOT" -> "1"; "M Reboot" stays; nil/"*" -> None (every event)."""
    if event is None or event.strip() in ("", "*"):
        return None
    event = event.strip()
    head, _, _ = event.partition(" ")
    return head if head.isdigit() else event


def filter_subject(event: str | None, serial: str | None) -> str:
    code = normalise_event_filter(event)
    serial_token = "*" if serial is None or serial.strip() in ("", "*") else token(serial)
    return subjects.cwmp_event(token(code) if code else "*", serial_token)


async def subscribe(
    js: JetStreamContext, event: str | None, serial: str | None, durable: str | None = None
) -> listening.StreamSource:
    """Events matching the filters, in stream order, none lost: from now on,
    or for a named (deployed) listener from where its last run stopped."""
    return await listening.subscribe(js, stream(), filter_subject(event, serial), durable=durable)
