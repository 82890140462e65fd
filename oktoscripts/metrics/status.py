"""Each process's headline figures over NATS, for the IDE's Status page.

Every process with metrics answers ``<prefix>.status.poll`` with a report:
its kind and name, its figures now (read from this process's own series, so
the page and ``/metrics`` never disagree) and the samples of the last ten
minutes, taken every STEP seconds at wall-clock multiples of STEP so that the
web process can add up the processes' samples of the same moment. The web
process asks with one request and takes every answer that comes within
GATHER_S: a process that is down is simply missing from the page.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections import deque
from typing import Any

from prometheus_client import REGISTRY

from oktoscripts.bus import subjects

log = logging.getLogger(__name__)

STEP = 10.0  # seconds between samples
KEPT = 60  # samples kept: ten minutes
GATHER_S = 0.5  # how long the web process waits for the processes' answers

# Figures where every process reports the same shared count (several ACS or
# schedulers read one database or one stream): the page takes the largest.
SHARED = ("devices_online_cwmp", "devices_online_usp", "event_lag_max")
FAILED = ("failed", "limit_exceeded", "lost")


def poll_subject() -> str:
    return subjects.subject("status", "poll")


def sample() -> dict[str, float]:
    """This process's headline figures, from its series: counters as totals
    since it started, gauges as they are now."""
    figures: dict[str, float] = {}

    def add(key: str, value: float) -> None:
        figures[key] = figures.get(key, 0.0) + value

    for family in REGISTRY.collect():
        if not family.name.startswith("oktoscripts_"):
            continue
        for s in family.samples:
            _fold(family.name, s.name, s.labels, s.value, add, figures)
    return figures


def _fold(
    family: str, name: str, labels: dict, value: float, add: Any, figures: dict[str, float]
) -> None:
    short = family.removeprefix("oktoscripts_")
    if family == "oktoscripts_runs_finished" and name.endswith("_total"):
        add("runs_finished", value)
        if labels.get("status") in FAILED:
            add("runs_failed", value)
    elif family == "oktoscripts_device_calls" and name.endswith("_total"):
        add(f"device_calls_{labels.get('protocol', '')}", value)
        if labels.get("outcome") != "ok":
            add("device_call_errors", value)
    elif family == "oktoscripts_device_call_seconds":
        if name.endswith("_sum"):
            add("device_call_seconds_sum", value)
        elif name.endswith("_count"):
            add("device_call_seconds_count", value)
    elif family == "oktoscripts_devices_online":
        add(f"devices_online_{labels.get('protocol', '')}", value)
    elif family == "oktoscripts_event_stream_lag":
        figures["event_lag_max"] = max(figures.get("event_lag_max", 0.0), value)
    elif name.endswith("_total") or not name.endswith(("_bucket", "_sum", "_count")):
        add(short, value)


class StatusReporter:
    """Answers the Status page's polls for one process."""

    def __init__(self, nc: Any, kind: str, name: str) -> None:
        self.nc = nc
        self.kind = kind
        self.name = name
        self.history: deque[tuple[float, dict[str, float]]] = deque(maxlen=KEPT)
        self._sub = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(poll_subject(), cb=self._answer)
        self._task = asyncio.get_running_loop().create_task(self._sample(), name="status")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # noqa: BLE001 - the connection is already closed
                pass

    def report(self) -> dict[str, Any]:
        return report(self.kind, self.name, list(self.history))

    async def _answer(self, msg: Any) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, json.dumps(self.report()).encode())

    async def _sample(self) -> None:
        while True:
            now = time.time()
            tick = (now // STEP + 1) * STEP
            await asyncio.sleep(tick - now)
            self.history.append((tick, sample()))


def report(kind: str, name: str, history: list) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "now": sample(),
        "history": [[t, s] for t, s in history],
    }


async def gather(nc: Any, wait_s: float = GATHER_S) -> list[dict[str, Any]]:
    """The reports of every process that answers within ``wait_s``."""
    inbox = nc.new_inbox()
    reports: list[dict[str, Any]] = []

    async def take(msg: Any) -> None:
        try:
            reports.append(json.loads(msg.data))
        except ValueError:
            log.warning("status: an answer that is not JSON: %r", msg.data[:100])

    sub = await nc.subscribe(inbox, cb=take)
    try:
        await nc.publish(poll_subject(), b"", reply=inbox)
        await asyncio.sleep(wait_s)
    finally:
        await sub.unsubscribe()
    return reports


# The Status page's charts: (figure, per second?) — counters become rates.
CHARTS = (
    ("runs_started", True),
    ("runs_failed", True),
    ("worker_runs_held", False),
    ("worker_lua_threads_stuck", False),
    ("device_calls", True),
    ("device_call_errors", True),
    ("acs_informs", True),
    ("acs_sessions_open", False),
    ("usp_messages", True),
    ("devices_online_cwmp", False),
    ("devices_online_usp", False),
    ("event_lag_max", False),
)


def _with_sums(figures: dict[str, float]) -> dict[str, float]:
    """Figures plus the device calls of both protocols, which the page shows."""
    out = dict(figures)
    out["device_calls"] = figures.get("device_calls_cwmp", 0) + figures.get("device_calls_usp", 0)
    return out


def _combine(into: dict[str, float], figures: dict[str, float]) -> None:
    for key, value in figures.items():
        if key in SHARED:
            into[key] = max(into.get(key, 0.0), value)
        else:
            into[key] = into.get(key, 0.0) + value


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole platform: the processes, the figures now, and each chart's points."""
    now: dict[str, float] = {}
    points: dict[float, dict[str, float]] = {}
    for rep in reports:
        _combine(now, _with_sums(rep.get("now") or {}))
        history = [(t, _with_sums(s)) for t, s in rep.get("history") or []]
        for (t0, before), (t1, after) in zip(history, history[1:], strict=False):
            at = points.setdefault(t1, {})
            _combine(
                at,
                {
                    key: (after.get(key, 0.0) - before.get(key, 0.0)) / (t1 - t0)
                    if rate
                    else after.get(key, 0.0)
                    for key, rate in CHARTS
                },
            )
    charts = {key: [(t, points[t].get(key, 0.0)) for t in sorted(points)] for key, _ in CHARTS}
    processes = sorted(
        ({k: rep.get(k) for k in ("kind", "name", "host", "pid")} for rep in reports),
        key=lambda p: (str(p["kind"]), str(p["name"])),
    )
    return {"processes": processes, "now": now, "charts": charts}
