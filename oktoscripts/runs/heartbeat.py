"""Worker heartbeats, and turning the runs of dead workers into "lost".

Each worker writes its key in the workers bucket every heartbeat interval.
Every worker also sweeps: a worker whose key has not changed for
``lost_after`` seconds (as this sweeper saw it, on its own monotonic clock,
so clocks of other machines do not matter) is dead, and its running or
listening runs become "lost". A sweeper acts only after watching for
``lost_after`` itself, so a fresh worker never judges others on no evidence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable

from django.utils import timezone
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

from oktoscripts.runs.models import Run
from oktoscripts.runs.store import RunStore

log = logging.getLogger(__name__)


class Heartbeat:
    """Keeps this worker's key fresh in the workers bucket."""

    def __init__(
        self, kv: KeyValue, worker_id: str, interval: float, load: Callable[[], int]
    ) -> None:
        self.kv = kv
        self.worker_id = worker_id
        self.interval = interval
        self.load = load  # runs held now, shown to operators
        self._started = time.time()

    async def beat(self) -> None:
        info = {
            "worker_id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self._started,
            "time": time.time(),
            "runs": self.load(),
        }
        await self.kv.put(self.worker_id, json.dumps(info).encode())

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception as exc:  # noqa: BLE001 - NATS down: keep trying
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.interval)

    async def remove(self) -> None:
        try:
            await self.kv.delete(self.worker_id)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            log.warning("could not remove heartbeat: %s", exc)


def lost_error(worker_id: str, lost_after: float) -> dict:
    return {
        "message": f"the worker running it ({worker_id}) stopped: no heartbeat for "
        f"{lost_after:g}s; what the script did before is unknown",
        "kind": "lost",
        "line": None,
        "traceback": [],
        "limit": None,
    }


class LostRunSweeper:
    """Finds dead workers and marks their runs lost; ``on_lost(run_id, error)`` for each."""

    def __init__(
        self,
        kv: KeyValue,
        store: RunStore,
        own_id: str,
        interval: float,
        lost_after: float,
        on_lost: Callable[[str, dict], None],
    ) -> None:
        self.kv = kv
        self.store = store
        self.own_id = own_id
        self.interval = interval
        self.lost_after = lost_after
        self.on_lost = on_lost
        self._watching_since = time.monotonic()
        self._seen: dict[str, tuple[int, float]] = {}  # worker id -> (revision, when it changed)

    async def alive_workers(self) -> set[str]:
        now = time.monotonic()
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            keys = []
        for key in keys:
            try:
                entry = await self.kv.get(key)
            except Exception:  # noqa: BLE001 - deleted or expired meanwhile
                continue
            seen = self._seen.get(key)
            if seen is None or seen[0] != entry.revision:
                self._seen[key] = (entry.revision, now)
        return {
            key for key, (_, changed) in self._seen.items() if now - changed < self.lost_after
        } | {self.own_id}

    async def sweep(self) -> list[str]:
        """Mark the runs of dead workers lost; returns their ids."""
        alive = await self.alive_workers()
        if time.monotonic() - self._watching_since < self.lost_after:
            return []

        def mark_lost() -> list[tuple[str, dict]]:
            orphans = list(
                Run.objects.filter(status__in=Run.ACTIVE)
                .exclude(worker_id__in=alive)
                .values_list("id", "worker_id")
            )
            lost = []
            for run_id, worker_id in orphans:
                error = lost_error(worker_id, self.lost_after)
                if Run.objects.filter(pk=run_id, status__in=Run.ACTIVE).update(
                    status=Run.Status.LOST, finished=timezone.now(), error=error
                ):
                    lost.append((str(run_id), error))
            return lost

        lost = await self.store.call(mark_lost)
        for run_id, error in lost:
            log.warning("run %s is lost: %s", run_id, error["message"])
            self.on_lost(run_id, error)
        return [run_id for run_id, _ in lost]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - NATS or database down: next time
                log.warning("lost-run sweep failed: %s", exc)
