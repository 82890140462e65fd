"""Starting and cancelling runs: the API the IDE, the REST API, schedules,
event triggers and ``runscript --remote`` use.

``asubmit_run`` / ``acancel_run`` are for async code and take the caller's
NATS client; ``submit_run`` / ``cancel_run`` are the same for sync code
(views, shell) over the process's background NATS connection.
"""

from __future__ import annotations

import json
import uuid
import weakref
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone
from nats.aio.client import Client

from oktoscripts.bus import blocking, subjects
from oktoscripts.bus.retry import retrying
from oktoscripts.bus.streams import ensure_run_queue
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.runtime import DEFAULT_RUNTIME
from oktoscripts.metrics import series
from oktoscripts.runs import live
from oktoscripts.runs.models import Run


class RunQueueError(Exception):
    """The run could not be queued (NATS unreachable); the Run is stored as failed."""


# Clients that already made sure the run queue stream exists.
_queue_ready: weakref.WeakSet[Client] = weakref.WeakSet()


def _new_run(
    code: str,
    script_name: str,
    args: dict | None,
    runtime: str,
    limits: dict | None,
    started_by: str,
    user: Any,
    script_version_id: int | None,
    trigger: str,
    run_id: str | None,
    listener_key: str = "",
    bounded_by_author: bool = False,
    replay_key: str = "",
    mode: str = "run",
    plan_of_id: Any = None,
    debug: bool = False,
    replay_of_id: Any = None,
    fixture_id: Any = None,
) -> Run:
    if mode not in Run.Mode.values:
        raise ValueError(f"unknown mode {mode!r} (use {' or '.join(Run.Mode.values)})")
    if runtime not in Run.Runtime.values:
        raise ValueError(f"unknown runtime {runtime!r} (use {' or '.join(Run.Runtime.values)})")
    if started_by not in Run.StartedBy.values:
        raise ValueError(f"unknown started_by {started_by!r}")
    for name, value in (("args", args), ("limits", limits)):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
        json.dumps(value)  # raises TypeError for values the database could not store
    Limits.with_overrides(limits)  # raises ValueError naming a wrong limit
    return Run(
        id=uuid.UUID(run_id) if run_id else uuid.uuid4(),
        script_name=script_name,
        code=code,
        args=args or {},
        runtime=runtime,
        limits=limits or {},
        started_by=started_by,
        user=user,
        script_version_id=script_version_id,
        trigger=trigger,
        listener_key=listener_key,
        bounded_by_author=bounded_by_author,
        replay_key=replay_key,
        mode=mode,
        plan_of_id=plan_of_id,
        debug=debug,
        replay_of_id=replay_of_id,
        fixture_id=fixture_id,
    )


async def publish_request(nc: Client, run: Run) -> None:
    """Put the run's request on the run queue (a repeat within 2 minutes is dropped)."""
    if nc not in _queue_ready:
        await ensure_run_queue(nc.jetstream())
        _queue_ready.add(nc)
    run_id = str(run.id)
    payload = json.dumps({"run_id": run_id, "script_name": run.script_name}).encode()
    js = nc.jetstream()
    # Safe to repeat: the stream stores one request per Nats-Msg-Id.
    headers = {"Nats-Msg-Id": run_id}
    await retrying(lambda: js.publish(subjects.run_queue(), payload, headers=headers))
    await live.publish(nc, live.status_message(run_id, "queued"))


def _mark_unqueued(run: Run, exc: Exception) -> None:
    error = {
        "message": f"could not queue the run: {exc}",
        "kind": "error",
        "line": None,
        "traceback": [],
        "limit": None,
    }
    Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
        status=Run.Status.FAILED, finished=timezone.now(), error=error
    )


async def asubmit_run(
    code: str,
    *,
    script_name: str = "script",
    args: dict | None = None,
    runtime: str = DEFAULT_RUNTIME,
    limits: dict | None = None,
    started_by: str = "api",
    user: Any = None,
    script_version_id: int | None = None,
    trigger: str = "",
    run_id: str | None = None,
    nc: Client | None = None,
    listener_key: str = "",
    bounded_by_author: bool = False,
    replay_key: str = "",
    mode: str = "run",
    plan_of_id: Any = None,
    debug: bool = False,
    replay_of_id: Any = None,
    fixture_id: Any = None,
) -> Run:
    """Store a queued Run and put its request on the run queue; returns the Run.

    ``run_id`` lets a caller subscribe to the run's live subjects before
    submitting, so it misses nothing. Raises ValueError for bad arguments and
    RunQueueError when NATS cannot be reached (the Run is then "failed").
    ``listener_key`` names the listeners of a deployed listener's runs
    (RunContext.listener_name).

    The run acts for ``user`` (its principal, oktoscripts/runs/principal.py);
    ``bounded_by_author``: an automation runs the latest saved version, whose
    author must hold a guarded binding's permission too. A run with no user
    acts for the machine's operator when ``started_by`` is "cli", else for no one.
    ``replay_key``: the run may be run again after its worker died
    (Run.replay_key), a bulk run's item. ``debug``: run it with the debugger."""
    run = _new_run(
        code,
        script_name,
        args,
        runtime,
        limits,
        started_by,
        user,
        script_version_id,
        trigger,
        run_id,
        listener_key,
        bounded_by_author,
        replay_key,
        mode,
        plan_of_id,
        debug,
        replay_of_id,
        fixture_id,
    )
    await sync_to_async(run.save)(force_insert=True)
    try:
        if nc is not None:
            await publish_request(nc, run)
        else:
            await sync_to_async(blocking.call, thread_sensitive=False)(
                lambda client: publish_request(client, run)
            )
    except Exception as exc:
        await sync_to_async(_mark_unqueued)(run, exc)
        raise RunQueueError(f"could not queue run {run.id}: {exc}") from exc
    series.run_submitted(run.started_by)
    return run


def submit_run(code: str, **options: Any) -> Run:
    """``asubmit_run`` for synchronous code."""
    run = _new_run(
        code,
        options.get("script_name", "script"),
        options.get("args"),
        options.get("runtime", DEFAULT_RUNTIME),
        options.get("limits"),
        options.get("started_by", "api"),
        options.get("user"),
        options.get("script_version_id"),
        options.get("trigger", ""),
        options.get("run_id"),
        options.get("listener_key", ""),
        options.get("bounded_by_author", False),
        options.get("replay_key", ""),
        options.get("mode", "run"),
        options.get("plan_of_id"),
        options.get("debug", False),
        options.get("replay_of_id"),
        options.get("fixture_id"),
    )
    run.save(force_insert=True)
    try:
        blocking.call(lambda client: publish_request(client, run))
    except Exception as exc:
        _mark_unqueued(run, exc)
        raise RunQueueError(f"could not queue run {run.id}: {exc}") from exc
    series.run_submitted(run.started_by)
    return run


def _cancel_if_queued(run_id: str) -> str | None:
    """Cancel a run still waiting in the queue, in the database (its request
    is dropped by the worker that takes it). Returns the run's status after."""
    error = {
        "message": "cancelled before it started",
        "kind": "cancelled",
        "line": None,
        "traceback": [],
        "limit": None,
    }
    if Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.CANCELLED, finished=timezone.now(), error=error
    ):
        return "cancelled"
    return Run.objects.filter(pk=run_id).values_list("status", flat=True).first()


async def _announce_cancel(nc: Client, run_id: str, status: str) -> str:
    if status == "cancelled":  # was queued: cancelled right here
        error = {"message": "cancelled before it started", "kind": "cancelled"}
        await live.publish(nc, live.status_message(run_id, "cancelled", error=error))
        await nc.flush()
        return "cancelled"
    if status in Run.ACTIVE:
        # The worker holding the run ends it and stores "cancelled".
        await nc.publish(subjects.run_cancel(run_id), b"")
        await nc.flush()
        return "cancelling"
    return status  # already finished: nothing to do


async def acancel_run(run_id: str, *, nc: Client | None = None) -> str:
    """Cancel a run. Returns "cancelled" (it was queued and is cancelled now),
    "cancelling" (its worker was told and ends it within 100 ms) or the final
    status it already had. Raises Run.DoesNotExist for an unknown id."""
    run_id = str(run_id)
    status = await sync_to_async(_cancel_if_queued)(run_id)
    if status is None:
        raise Run.DoesNotExist(f"no run {run_id}")
    if nc is not None:
        return await _announce_cancel(nc, run_id, status)
    return await sync_to_async(blocking.call, thread_sensitive=False)(
        lambda client: _announce_cancel(client, run_id, status)
    )


def cancel_run(run_id: str) -> str:
    """``acancel_run`` for synchronous code."""
    run_id = str(run_id)
    status = _cancel_if_queued(run_id)
    if status is None:
        raise Run.DoesNotExist(f"no run {run_id}")
    return blocking.call(lambda client: _announce_cancel(client, run_id, status))
