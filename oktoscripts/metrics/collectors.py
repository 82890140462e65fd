"""Figures that live elsewhere (MongoDB, JetStream), read in the background.

A scrape must stay fast (the target is 20 ms for a busy worker), so these
are never read while scraping: a task of the process refreshes them every
REFRESH_S and the collector hands out the last values read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

REFRESH_S = 15.0


class Refreshed(Collector):
    """A gauge family whose samples ``read()`` returns: [(labels, value)]."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: list[str],
        read: Callable[[], Awaitable[list[tuple[tuple[str, ...], float]]]],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = labels
        self.read = read
        self.values: list[tuple[tuple[str, ...], float]] = []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in self.values:
            family.add_metric(list(labels), value)
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    async def refresh(self) -> None:
        try:
            self.values = await self.read()
        except Exception as exc:  # noqa: BLE001 - the source is away: keep the last values
            log.warning("metrics: cannot read %s: %s", self.name, exc)

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)


_registered: dict[str, Refreshed] = {}


def register(collector: Refreshed) -> Refreshed:
    """Registered once per process; a newer source (a test makes several) replaces the older."""
    older = _registered.pop(collector.name, None)
    if older is not None:
        REGISTRY.unregister(older)
    REGISTRY.register(collector)
    _registered[collector.name] = collector
    return collector


def devices_online(registry: Any, protocol: str) -> Refreshed:
    """``oktoscripts_devices_online{protocol}``: devices of one protocol online now,
    as the device registry says (so every ACS or controller reports the same count)."""

    async def read() -> list[tuple[tuple[str, ...], float]]:
        count = await asyncio.to_thread(registry.online_count, protocol)
        return [((protocol,), float(count))]

    return register(
        Refreshed(
            "oktoscripts_devices_online",
            "Devices online now, by protocol (cwmp, usp)",
            ["protocol"],
            read,
        )
    )
