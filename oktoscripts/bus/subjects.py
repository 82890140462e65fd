"""Every NATS subject and JetStream stream name of the platform, in one place.

All names start with a prefix (``OKTOSCRIPTS_BUS_PREFIX``, default ``okto``)
so that several installations, or test sessions, can share one NATS server.
"""

from __future__ import annotations

from oktoscripts import config


def prefix() -> str:
    return config.value("OKTOSCRIPTS_BUS_PREFIX")


def stream_name(kind: str) -> str:
    """A JetStream stream name (no dots allowed there)."""
    return f"{prefix()}_{kind}".upper().replace(".", "_").replace("-", "_")


def subject(*parts: str) -> str:
    """``okto.<part>.<part>...``"""
    return ".".join((prefix(), *parts))


def kv_bucket(kind: str) -> str:
    """A JetStream key-value bucket name (stored in the stream ``KV_<bucket>``)."""
    return stream_name(kind)


# Runs. A run's live traffic is under ``<prefix>.runs.<run id>.*`` so one
# wildcard subscription follows everything about a run, in publication order.

RUN_QUEUE_STREAM = "runs"  # stream_name(RUN_QUEUE_STREAM): the work queue of run requests
RUN_QUEUE_CONSUMER = "workers"  # the one durable consumer every worker pulls from
WORKERS_BUCKET = "workers"  # kv_bucket(WORKERS_BUCKET): worker heartbeats, key = worker id


def run_queue() -> str:
    """Run requests (JetStream work queue): the payload names the run to take."""
    return subject("runqueue", "requests")


def run_output(run_id: str) -> str:
    """Every output line of a run, as printed (JSON with its ``seq``)."""
    return subject("runs", run_id, "output")


def run_status(run_id: str) -> str:
    """A run's status changes (JSON); the final one is published after it is stored."""
    return subject("runs", run_id, "status")


def run_cancel(run_id: str = "*") -> str:
    """Cancel requests; every worker listens on ``run_cancel("*")``."""
    return subject("runs", run_id, "cancel")


def run_events(run_id: str) -> str:
    """Output, status and cancel of one run, for a single ordered subscription."""
    return subject("runs", run_id, "*")


def run_calls(run_id: str = "*") -> str:
    """Requests for the recorded device calls of a running run (request/reply,
    oktoscripts/runs/callbus.py); every worker listens on ``run_calls("*")``.
    Not under ``runs.<id>``: a run's followers must not see them."""
    return subject("runcalls", run_id)


# Debug runs (oktoscripts/runs/debugbus.py). Requests go to the worker holding
# the run (request/reply: only that worker answers); its debugger's events
# come back on a subject of the run.


def debug_control(run_id: str = "*") -> str:
    """Debugger requests about one run; every worker listens on ``debug_control("*")``."""
    return subject("debug", run_id, "control")


def debug_events(run_id: str) -> str:
    """The debugger's events of one run (paused, resumed, ended), JSON."""
    return subject("debug", run_id, "events")


# CWMP (the ACS). Workers send RPC requests to the ACS and wait for the answer
# on a subject of their own; Inform events go to a JetStream stream.

CWMP_EVENTS_STREAM = "cwmp_events"  # stream_name(CWMP_EVENTS_STREAM)


def cwmp_rpc() -> str:
    """RPC requests from workers to the ACS (request/reply: the reply says "queued")."""
    return subject("cwmp", "rpc")


def cwmp_answer(request_id: str) -> str:
    """The answer (or error) to one RPC request; the requester subscribes first."""
    return subject("cwmp", "answer", request_id)


def cwmp_cancel() -> str:
    """A requester gave up on a request: the ACS drops it from the queue."""
    return subject("cwmp", "cancel")


def cwmp_queued(serial_token: str = "*") -> str:
    """Every ACS hears that a device's queue got a request (it may hold its session)."""
    return subject("cwmp", "queued", serial_token)


def cwmp_event(code_token: str = "*", serial_token: str = "*") -> str:
    """One EventStruct of an Inform (JetStream stream CWMP_EVENTS_STREAM)."""
    return subject("cwmp", "event", code_token, serial_token)


# Devices.

NEW_DEVICES_STREAM = "devices_new"  # stream_name(NEW_DEVICES_STREAM): one event per device insert


def new_devices() -> str:
    """A device the platform sees for the first time (JSON: its Lua device table)."""
    return subject("devices", "new")
