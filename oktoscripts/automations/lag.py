"""How far each trigger and deployed listener is behind its event stream.

Triggers read through consumers named ``trigger-<id>-<since>``, deployed
listeners through ``<listener key>-<n>-<subject hash>`` (bus/listening.py);
the events a consumer has not been given yet (``num_pending``) are its lag.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from nats.js.errors import NotFoundError

from oktoscripts.automations.models import Deployment, Trigger
from oktoscripts.automations.triggers import CONSUMER_PREFIX
from oktoscripts.metrics.collectors import Refreshed, register

Lag = tuple[str, int, str, int]  # (automation kind, its id, its name, events pending)


def _streams() -> tuple[str, ...]:
    from oktoscripts.cwmp import events as cwmp_events
    from oktoscripts.devices import events as device_events

    return (cwmp_events.stream(), device_events.stream_name())


async def consumer_lags(js: Any) -> list[Lag]:
    pending: list[tuple[str, int]] = []  # (consumer name, pending)
    for stream in _streams():
        try:
            infos = await js.consumers_info(stream)
        except NotFoundError:
            continue
        pending.extend((info.name or "", int(info.num_pending or 0)) for info in infos)
    return await sync_to_async(_name_them)(pending)


def _name_them(pending: list[tuple[str, int]]) -> list[Lag]:
    """Each automation's lag (the largest of its consumers'); consumers of
    no automation (ephemeral listeners of ordinary runs) are left out."""
    triggers = dict(Trigger.objects.values_list("pk", "name"))
    deployments = {
        key: (pk, name)
        for pk, name, key in Deployment.objects.values_list("pk", "name", "listener_key")
    }
    lags: dict[tuple[str, int], Lag] = {}
    for consumer, count in pending:
        found = _owner(consumer, triggers, deployments)
        if found is None:
            continue
        kind, pk, name = found
        previous = lags.get((kind, pk))
        if previous is None or previous[3] < count:
            lags[(kind, pk)] = (kind, pk, name, count)
    return sorted(lags.values())


def _owner(
    consumer: str, triggers: dict[int, str], deployments: dict[str, tuple[int, str]]
) -> tuple[str, int, str] | None:
    if consumer.startswith(CONSUMER_PREFIX):
        pk_text = consumer[len(CONSUMER_PREFIX) :].split("-", 1)[0]
        if pk_text.isdigit() and int(pk_text) in triggers:
            return "trigger", int(pk_text), triggers[int(pk_text)]
        return None
    key = consumer.rsplit("-", 2)[0]  # drop "-<n>-<subject hash>"
    if key in deployments:
        pk, name = deployments[key]
        return "deployment", pk, name
    return None


def event_stream_lag(nc: Any) -> Refreshed:
    """``oktoscripts_event_stream_lag{automation, id, name}``, read every few seconds
    by the scheduler: events waiting for each trigger and deployed listener."""

    async def read() -> list[tuple[tuple[str, ...], float]]:
        return [
            ((kind, str(pk), name), float(pending))
            for kind, pk, name, pending in await consumer_lags(nc.jetstream())
        ]

    return register(
        Refreshed(
            "oktoscripts_event_stream_lag",
            "Events not yet delivered to a trigger's or deployed listener's consumer",
            ["automation", "id", "name"],
            read,
        )
    )
