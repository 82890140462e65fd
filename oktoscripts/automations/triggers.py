"""Event triggers: "on CWMP event E from devices matching a filter (or on a new
device), run script S with the event as its argument".

Each enabled trigger reads its events through its own durable JetStream pull
consumer (on the CWMP event stream, filtered by event code, or on the
new-device stream), starting at the moment the trigger became active. Every
scheduler process pulls from the same durable consumer, so each event goes to
one of them; an event is acknowledged only after its run is stored and
queued, so a process that dies mid-way leaves it to be redelivered. The run
id is derived from (trigger, stream sequence): a redelivered event finds its
run already there and starts nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone
from nats.aio.client import Client
from nats.js import api
from nats.js.errors import NotFoundError

from oktoscripts.automations import devicefilter, targets
from oktoscripts.automations.models import Trigger
from oktoscripts.bus import subjects
from oktoscripts.scripts.arguments import clean_args

log = logging.getLogger(__name__)

RUN_ID_NAMESPACE = uuid.UUID("6d1b5f1e-4c0e-4d0a-9a57-2f3c1d9e8b71")
CONSUMER_PREFIX = "trigger-"
FETCH = 64
ACK_WAIT_S = 60.0


@dataclass(frozen=True)
class Source:
    """Where a trigger's events come from, and the name of its consumer."""

    stream: str
    filter_subject: str
    consumer: str


def source_of(trigger: Trigger) -> Source:
    from oktoscripts.cwmp import events as cwmp_events
    from oktoscripts.devices import events as device_events

    since = int(trigger.active_since.timestamp() * 1000)
    name = f"{CONSUMER_PREFIX}{trigger.pk}-{since}"
    if trigger.kind == Trigger.Kind.CWMP_EVENT:
        return Source(
            cwmp_events.stream(), cwmp_events.filter_subject(trigger.event or None, None), name
        )
    return Source(device_events.stream_name(), subjects.new_devices(), name)


def check_event(event: str) -> str:
    """A CWMP event filter as stored ("" = every event)."""
    from oktoscripts.cwmp.events import normalise_event_filter

    if not isinstance(event, str):
        raise ValueError("event must be a string")
    return normalise_event_filter(event) or ""


def run_id_for(trigger_id: int, stream: str, seq: int) -> str:
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{trigger_id}:{stream}:{seq}"))


def event_args(trigger: Trigger, data: dict) -> tuple[str, dict]:
    """The serial an event is about and the run's arguments."""
    args = dict(trigger.args or {})
    if trigger.kind == Trigger.Kind.CWMP_EVENT:
        serial = str(data.get("serial_number") or "")
        args.update(event=data, serial=serial)
    else:
        device = data.get("device") or {}
        serial = str(device.get("sn") or "")
        args.update(device=device, serial=serial, protocol=data.get("protocol", ""))
    return serial, args


async def _ensure_streams(js: Any) -> None:
    from oktoscripts.cwmp import events as cwmp_events
    from oktoscripts.devices import events as device_events

    await cwmp_events.ensure_stream(js)
    await device_events.ensure_stream(js)


class TriggerRunner:
    """Keeps one pulling task per enabled trigger; drops consumers of disabled ones."""

    def __init__(self, nc: Client, registry: Any) -> None:
        self.nc = nc
        self.registry = registry
        self._tasks: dict[str, asyncio.Task] = {}
        self._streams_ready = False

    async def reconcile(self) -> None:
        js = self.nc.jetstream()
        if not self._streams_ready:
            await _ensure_streams(js)
            self._streams_ready = True
        enabled = await sync_to_async(list)(Trigger.objects.filter(enabled=True))
        wanted = {source_of(t).consumer: (t, source_of(t)) for t in enabled}
        for name, (trigger, source) in wanted.items():
            task = self._tasks.get(name)
            if task is None or task.done():
                self._tasks[name] = asyncio.get_running_loop().create_task(
                    self._pull(trigger.pk, source), name=name
                )
        for name in list(self._tasks):
            if name not in wanted:
                self._tasks.pop(name).cancel()
        await self._delete_stale(js, set(wanted))

    async def _delete_stale(self, js: Any, wanted: set[str]) -> None:
        from oktoscripts.cwmp import events as cwmp_events
        from oktoscripts.devices import events as device_events

        for stream in (cwmp_events.stream(), device_events.stream_name()):
            try:
                consumers = await js.consumers_info(stream)
            except NotFoundError:
                continue
            for info in consumers:
                name = info.name or ""
                if name.startswith(CONSUMER_PREFIX) and name not in wanted:
                    try:
                        await js.delete_consumer(stream, name)
                    except NotFoundError:
                        pass

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    async def _pull(self, trigger_id: int, source: Source) -> None:
        js = self.nc.jetstream()
        trigger = await Trigger.objects.filter(pk=trigger_id).afirst()
        if trigger is None:
            return
        config = api.ConsumerConfig(
            durable_name=source.consumer,
            filter_subject=source.filter_subject,
            deliver_policy=api.DeliverPolicy.BY_START_TIME,
            opt_start_time=trigger.active_since.astimezone().isoformat(),
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_S,
            max_ack_pending=10_000,
        )
        while True:
            try:
                psub = await js.pull_subscribe(
                    source.filter_subject,
                    durable=source.consumer,
                    stream=source.stream,
                    config=config,
                )
                break
            except Exception as exc:  # noqa: BLE001 - NATS away: try again
                log.warning("trigger %s: cannot open its consumer: %s", trigger_id, exc)
                await asyncio.sleep(2)
        try:
            while True:
                try:
                    msgs = await psub.fetch(FETCH, timeout=2)
                except TimeoutError:  # nats.errors.TimeoutError is one too
                    continue
                except Exception as exc:  # noqa: BLE001 - NATS reconnecting
                    log.warning("trigger %s: fetch failed: %s", trigger_id, exc)
                    await asyncio.sleep(1)
                    continue
                trigger = (
                    await Trigger.objects.select_related("script", "version", "configured_by")
                    .filter(pk=trigger_id, enabled=True)
                    .afirst()
                )
                if trigger is None:
                    return  # deleted or disabled meanwhile: its messages stay unacknowledged
                for msg in msgs:
                    await self._handle(trigger, source, msg)
        finally:
            try:
                await psub.unsubscribe()
            except Exception:  # noqa: BLE001 - connection closing
                pass

    async def _handle(self, trigger: Trigger, source: Source, msg: Any) -> None:
        try:
            data = json.loads(msg.data)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            log.warning("trigger %s: undecodable event on %s", trigger.pk, msg.subject)
            await msg.ack()
            return
        serial, args = event_args(trigger, data)
        try:
            # Even with no filter: a device twin sets off a trigger only when asked.
            wanted = await asyncio.to_thread(
                devicefilter.matches, self.registry, trigger.device_filter, serial
            )
            if wanted:
                await self._start(trigger, source, msg, args, serial)
        except Exception as exc:  # noqa: BLE001 - database away: redeliver later
            log.warning("trigger %s: event not handled yet (%s); will retry", trigger.pk, exc)
            await msg.nak(delay=5)
            return
        await msg.ack()

    async def _start(
        self, trigger: Trigger, source: Source, msg: Any, args: dict, serial: str
    ) -> None:
        from oktoscripts.runs.submit import RunQueueError

        run_id = run_id_for(trigger.pk, source.stream, msg.metadata.sequence.stream)
        try:
            target = await sync_to_async(targets.resolve_for)(trigger)
        except targets.TargetError as exc:
            log.warning("trigger %s: event dropped: %s", trigger.pk, exc)
            return
        what = data_label(trigger, args)
        try:
            await targets.astart(
                target,
                args=args,
                started_by="event",
                trigger=f"trigger {trigger.name} #{trigger.pk}: {what} of {serial}",
                nc=self.nc,
                run_id=run_id,
                **trigger.acting_for(),
            )
        except IntegrityError:
            return  # redelivered: its run exists already
        except RunQueueError as exc:
            log.warning("trigger %s: run %s stored as failed: %s", trigger.pk, run_id, exc)
        await Trigger.objects.filter(pk=trigger.pk).aupdate(
            fired=F("fired") + 1, last_fired=timezone.now()
        )


def data_label(trigger: Trigger, args: dict) -> str:
    if trigger.kind == Trigger.Kind.CWMP_EVENT:
        event = args.get("event") or {}
        return f"event {event.get('code') or event.get('event')}"
    return "new device"


# -- creating and editing ----------------------------------------------------

EDITABLE = ("name", "kind", "event", "device_filter", "enabled", "args", "version")


def save(trigger: Trigger, **fields: Any) -> Trigger:
    """Create or edit a trigger from user fields (sync); ValueError says what is wrong.
    A change of what it listens to, or enabling it, starts a fresh consumer from now."""
    before = (trigger.kind, trigger.event, trigger.enabled) if trigger.pk else None
    for key, value in fields.items():
        if key not in EDITABLE:
            raise ValueError(f"unknown trigger field {key!r}")
        setattr(trigger, key, value)
    trigger.name = (trigger.name or "").strip()[:200]
    if not trigger.name:
        raise ValueError("a trigger needs a name")
    if trigger.kind not in Trigger.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(Trigger.Kind.values)}")
    trigger.event = check_event(trigger.event or "") if trigger.kind == "cwmp_event" else ""
    trigger.device_filter = devicefilter.clean(trigger.device_filter)
    trigger.args = clean_args(trigger.args)  # the one rule of every run's arguments
    targets.resolve(trigger.script, trigger.version)
    if before != (trigger.kind, trigger.event, trigger.enabled):
        trigger.active_since = timezone.now()
    trigger.updated = timezone.now()
    trigger.save()
    return trigger
