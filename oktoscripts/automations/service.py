"""The automation service: one loop that claims schedule ticks, drives bulk
runs, supervises deployed listeners and keeps the trigger consumers.

It runs in ``python manage.py scheduler`` (``up`` starts one; production may
start several, on several machines: every step is claimed atomically in the
Django database or shared through a durable JetStream consumer). It wakes
every ``interval`` seconds, and at once when a run it waits for ends (it
listens to the runs' status messages).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from typing import Any

from asgiref.sync import sync_to_async
from nats.aio.client import Client

from oktoscripts.automations import bulk, deployments, schedules
from oktoscripts.automations.triggers import TriggerRunner
from oktoscripts.runs import listenerevents, live

log = logging.getLogger(__name__)

TRIGGER_RECONCILE_S = 2.0
FINAL = ("succeeded", "failed", "cancelled", "limit_exceeded", "lost")


def new_owner_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(2)}"


class AutomationService:
    def __init__(
        self, nc: Client, registry: Any = None, *, interval: float = 0.5, owner: str | None = None
    ) -> None:
        self.nc = nc
        self.registry = registry
        self.interval = interval
        self.owner = owner or new_owner_id()
        self.triggers = TriggerRunner(nc, registry)
        self._wake = asyncio.Event()
        self._watched: set[str] = set()  # run ids whose end wakes the loop
        self._task: asyncio.Task | None = None
        self._sub = None
        self._last_reconcile = 0.0
        self._cancel_sent: set[str] = set()
        self._events_sub = None
        self._deployment_runs: dict[str, int] = {}  # run id -> deployment id
        self._event_counts: dict[int, int] = {}
        self._last_events: dict[int, list[dict]] = {}

    async def start(self) -> None:
        self._sub = await live.subscribe_statuses(self.nc, self._on_status)
        # A queue group: with several scheduler processes each event is counted once.
        self._events_sub = await self.nc.subscribe(
            listenerevents.listener_event_subject("*"), queue="automations", cb=self._on_event
        )
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="automations")
        log.info("automation service %s started", self.owner)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.triggers.stop()
        for sub in (self._sub, self._events_sub):
            if sub is None:
                continue
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - connection already closed
                pass

    async def _on_status(self, message: dict) -> None:
        if message.get("status") in FINAL and message.get("run_id") in self._watched:
            self._wake.set()

    async def _on_event(self, msg: Any) -> None:
        run_id = msg.subject.split(".")[-2]
        dep_id = self._deployment_runs.get(run_id)
        if dep_id is None:
            return
        self._event_counts[dep_id] = self._event_counts.get(dep_id, 0) + 1
        try:
            message = json.loads(msg.data)
        except ValueError:
            return
        recent = self._last_events.setdefault(dep_id, [])
        recent.append({"time": message.get("time"), "event": message.get("event")})
        del recent[: -deployments.LAST_EVENTS]

    async def _loop(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - database or NATS away: next pass
                log.exception("automation pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def step(self) -> None:
        """One pass over every kind of automation."""
        await self.run_schedules()
        await self.drive_bulk_runs()
        await self.supervise_deployments()
        if time.monotonic() - self._last_reconcile >= TRIGGER_RECONCILE_S:
            self._last_reconcile = time.monotonic()
            await self.triggers.reconcile()

    async def run_schedules(self) -> None:
        for claim in await sync_to_async(schedules.claim_due)(None, self.owner):
            await schedules.fire(claim, self.nc)

    async def drive_bulk_runs(self) -> None:
        watched: set[str] = set()
        for bulk_id in await sync_to_async(bulk.lease)(self.owner):
            step = await sync_to_async(bulk.plan)(bulk_id, self.owner)
            if step is None:
                continue
            watched.update(step.running_run_ids)
            if step.to_start:
                await self._start_items(step)
            for run_id in step.to_cancel:
                await self._cancel(run_id)
        self._watched = watched

    async def _start_items(self, step: bulk.Step) -> None:
        try:
            target, record = await sync_to_async(bulk.start_context)(step.bulk_id)
        except Exception as exc:  # noqa: BLE001 - script deleted, ...: the items fail
            for item_id, *_ in step.to_start:
                await sync_to_async(bulk.mark_not_started)(item_id, str(exc))
            return

        async def one(item_id: int, serial: str, run_id: str, replay_key: str) -> None:
            from oktoscripts.automations import targets

            args = {**(record.args or {}), record.serial_arg: serial}
            try:
                await targets.astart(
                    target,
                    args=args,
                    started_by="user",
                    trigger=f"bulk run #{record.pk} on {serial}",
                    nc=self.nc,
                    run_id=run_id,
                    replay_key=replay_key,
                    mode=record.mode,
                    **record.acting_for(),
                )
            except Exception as exc:  # noqa: BLE001 - the run is stored as failed, or not at all
                log.warning("bulk run %s: %s not started: %s", record.pk, serial, exc)
                await sync_to_async(bulk.mark_not_started)(item_id, f"not started: {exc}")

        await asyncio.gather(*(one(*item) for item in step.to_start))

    async def _cancel(self, run_id: str) -> None:
        from oktoscripts.runs.submit import acancel_run

        if run_id in self._cancel_sent:
            return
        try:
            await acancel_run(run_id, nc=self.nc)
            self._cancel_sent.add(run_id)
        except Exception as exc:  # noqa: BLE001 - unknown run or NATS away: next pass
            log.warning("could not cancel run %s: %s", run_id, exc)

    async def supervise_deployments(self) -> None:
        counts, last = self._event_counts, self._last_events
        self._event_counts, self._last_events = {}, {}
        if counts:
            await sync_to_async(deployments.add_events)(counts, last)
        starts, cancels = await sync_to_async(deployments.plan)()
        for item in starts:
            self._deployment_runs[item.run_id] = item.deployment_id  # count its first events
            await deployments.start(item, self.nc)
        for run_id in cancels:
            await self._cancel(run_id)
        self._deployment_runs = await sync_to_async(deployments.current_runs)()
