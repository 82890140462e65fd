"""Queued runs whose request never reached the queue get it again.

A run is stored "queued" first and its request published next; a process that
dies between the two leaves a run that no worker will ever take. The run
queue is a work queue whose requests stay in the stream until a worker has
claimed the run (the ack comes after the claim), so when the stream holds no
request at all, every run still "queued" since before ``GRACE_S`` is
stranded. Requeueing is safe even when a request did exist after all: a
worker claims a run only while it is queued, so a second request for it is
dropped, never run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from django.utils import timezone
from nats.aio.client import Client

from oktoscripts.runs.models import Run
from oktoscripts.runs.store import RunStore

log = logging.getLogger(__name__)

# Far longer than a submit takes between storing the run and publishing it.
GRACE_S = 30.0
INTERVAL_S = 15.0
BATCH = 500


async def requeue_stranded(nc: Client, store: RunStore, stream: str) -> list[str]:
    """Publish the requests of stranded queued runs again; returns their ids."""
    from oktoscripts.runs.submit import publish_request

    info = await nc.jetstream().stream_info(stream)
    if info.state.messages:
        return []  # requests are waiting or being taken: nothing can be told apart

    def stranded() -> list[Run]:
        cutoff = timezone.now() - timedelta(seconds=GRACE_S)
        queued = Run.objects.filter(status=Run.Status.QUEUED, created__lt=cutoff)
        return list(queued.only("id", "script_name").order_by("created")[:BATCH])

    runs = await store.call(stranded)
    for run in runs:
        log.warning("run %s was queued but its request was lost: queueing it again", run.pk)
        await publish_request(nc, run)
    return [str(run.pk) for run in runs]


async def run_sweeps(nc: Client, store: RunStore, stream: str) -> None:
    while True:
        await asyncio.sleep(INTERVAL_S)
        try:
            await requeue_stranded(nc, store, stream)
        except Exception as exc:  # noqa: BLE001 - NATS or database down: next time
            log.warning("stranded-run sweep failed: %s", exc)
