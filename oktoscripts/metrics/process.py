"""What each long-running process does for its metrics: its ``/metrics``
endpoint, its answers to the Status page, and the background readers of
figures that live elsewhere. One call at start, one at stop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from oktoscripts.metrics import conf
from oktoscripts.metrics.collectors import Refreshed
from oktoscripts.metrics.endpoint import MetricsEndpoint
from oktoscripts.metrics.status import StatusReporter

log = logging.getLogger(__name__)


class ProcessMetrics:
    """``kind``: web, worker, acs, usp or scheduler; ``name``: which one of them."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        self.endpoint = MetricsEndpoint(f"{kind} {name}")
        self.reporter: StatusReporter | None = None
        self._tasks: list[asyncio.Task] = []

    async def start(self, nc: Any, collectors: tuple[Refreshed, ...] = ()) -> None:
        if not conf.enabled():
            return
        self.endpoint.start()
        self.reporter = StatusReporter(nc, self.kind, self.name)
        try:
            await self.reporter.start()
        except Exception as exc:  # noqa: BLE001 - NATS away: the Status page misses this one
            log.warning("%s %s: not on the Status page: %s", self.kind, self.name, exc)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(c.run(), name=c.name) for c in collectors]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.reporter is not None:
            await self.reporter.stop()
        self.endpoint.stop()
