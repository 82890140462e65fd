"""Every series the platform exports, in one place, and the calls that record them.

Code elsewhere calls the functions below, never the prometheus objects, so
that ``OKTOSCRIPTS_METRICS=off`` turns all recording into one test of a flag
(bench/metrics.py measures both). Each process exports the series of what it
does (a worker the runs and device calls, the ACS its sessions, ...); the
others stay at zero or absent. Series with labels appear once a value was
recorded for those labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from oktoscripts.metrics import conf

ENABLED = conf.enabled()
# The `_created` twin of every counter doubles what a scrape carries for nothing Grafana uses.
disable_created_metrics()

# Run durations go from a millisecond (a trivial script) to a day (the wall cap).
RUN_SECONDS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    1800,
    3600,
    86400,
)
# Waiting in the queue: milliseconds when workers keep up, minutes when they do not.
WAIT_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# A device call: a few ms on a LAN, the 30 s protocol timeouts at worst.
CALL_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

RUNS_SUBMITTED = Counter(
    "oktoscripts_runs_submitted",
    "Runs stored and queued by this process, by how they were "
    "started (user, api, schedule, event, cli)",
    ["started_by"],
)
RUNS_STARTED = Counter(
    "oktoscripts_runs_started",
    "Runs this worker claimed and began, by how they were started",
    ["started_by"],
)
RUNS_FINISHED = Counter(
    "oktoscripts_runs_finished",
    "Runs that ended with their outcome stored, by final status and "
    "how they were started (lost: declared lost by this worker's sweeper)",
    ["status", "started_by"],
)
RUN_DURATION = Histogram(
    "oktoscripts_run_duration_seconds",
    "From claim to stored outcome, by final status",
    ["status"],
    buckets=RUN_SECONDS,
)
RUN_QUEUE_WAIT = Histogram(
    "oktoscripts_run_queue_wait_seconds",
    "From the run's creation to a worker claiming it",
    buckets=WAIT_SECONDS,
)
RUNS_HELD = Gauge("oktoscripts_worker_runs_held", "Runs this worker holds now")
RUNS_CAPACITY = Gauge("oktoscripts_worker_concurrency", "Runs this worker may hold at once")
LUA_THREADS_STUCK = Gauge(
    "oktoscripts_worker_lua_threads_stuck",
    "Lua threads abandoned in a call that cannot be interrupted, still busy",
)
DEVICE_CALLS = Counter(
    "oktoscripts_device_calls",
    "Device calls made by scripts, by protocol (cwmp, usp) and "
    "outcome (ok, error, timeout, unavailable)",
    ["protocol", "outcome"],
)
DEVICE_CALL_SECONDS = Histogram(
    "oktoscripts_device_call_seconds",
    "Latency of scripts' device calls",
    ["protocol", "outcome"],
    buckets=CALL_SECONDS,
)
ACS_INFORMS = Counter("oktoscripts_acs_informs", "Informs the ACS accepted")
ACS_SESSIONS_STARTED = Counter("oktoscripts_acs_sessions_started", "CWMP sessions started")
ACS_SESSIONS_ENDED = Counter(
    "oktoscripts_acs_sessions_ended", "CWMP sessions ended, completed or failed", ["outcome"]
)
ACS_SESSIONS_OPEN = Gauge("oktoscripts_acs_sessions_open", "CWMP sessions open now")
USP_MESSAGES = Counter(
    "oktoscripts_usp_messages",
    "USP messages by direction (in, out) and type (get, get_resp, notify, error, ...)",
    ["direction", "type"],
)
USP_AGENTS_CONNECTED = Gauge(
    "oktoscripts_usp_agents_connected", "USP agents this controller has a route to"
)


_children: dict[tuple, Any] = {}


def _child(metric: Any, *values: str) -> Any:
    """The series of ``metric`` with these label values: ``labels()`` checks and
    locks on every call, which cost a third of what recording a run costs."""
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def run_submitted(started_by: str) -> None:
    if ENABLED:
        _child(RUNS_SUBMITTED, started_by or "unknown").inc()


def run_started(started_by: str, queue_wait_s: float | None) -> None:
    if not ENABLED:
        return
    _child(RUNS_STARTED, started_by or "unknown").inc()
    if queue_wait_s is not None:
        RUN_QUEUE_WAIT.observe(max(queue_wait_s, 0.0))


def run_finished(started_by: str, status: str, duration_s: float | None) -> None:
    if not ENABLED:
        return
    _child(RUNS_FINISHED, status, started_by or "unknown").inc()
    if duration_s is not None:
        _child(RUN_DURATION, status).observe(duration_s)


def device_call(protocol: str, error_code: str | None, seconds: float) -> None:
    """One device call; ``error_code`` None when it succeeded."""
    if not ENABLED:
        return
    outcome = call_outcome(error_code)
    _child(DEVICE_CALLS, protocol, outcome).inc()
    _child(DEVICE_CALL_SECONDS, protocol, outcome).observe(seconds)


def call_outcome(error_code: str | None) -> str:
    """408 is the platform's "no answer in time", 503/404 "no route to the device"."""
    if error_code is None:
        return "ok"
    if error_code == "408":
        return "timeout"
    if error_code in ("503", "404"):
        return "unavailable"
    return "error"


def acs_inform() -> None:
    if ENABLED:
        ACS_INFORMS.inc()


def acs_session_started() -> None:
    if ENABLED:
        ACS_SESSIONS_STARTED.inc()


def acs_session_ended(failed: bool) -> None:
    if ENABLED:
        _child(ACS_SESSIONS_ENDED, "failed" if failed else "completed").inc()


def usp_message(direction: str, kind: str | None) -> None:
    if ENABLED:
        _child(USP_MESSAGES, direction, kind or "unknown").inc()


def watch(gauge: Gauge, read: Callable[[], float]) -> None:
    """Read ``gauge`` from ``read`` when scraped (one process, one owner of it)."""
    if ENABLED:
        gauge.set_function(read)
