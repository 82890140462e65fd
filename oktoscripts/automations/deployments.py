"""Deployed listeners: a script that registers listeners, kept running.

A deployment pins a script version. While it is wanted "running", the
supervisor (in every scheduler process) makes sure it has a current run:
when there is none, or the current one ended, it starts a fresh run. The
start is claimed by a conditional UPDATE of ``current_run_id`` (from the run
that ended to the new id), so of several scheduler processes exactly one
starts it. A run that ended "lost" (its worker died: the workers' sweeper
marks it) is replaced at once, on whichever worker takes the new request; a
run that failed or ended by itself is replaced after a back-off that doubles
with each end in a row, so a broken script does not spin.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from oktoscripts.automations import targets
from oktoscripts.automations.models import Deployment, new_listener_key
from oktoscripts.runs.models import Run
from oktoscripts.scripts.arguments import clean_args

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0


@dataclass(frozen=True)
class Start:
    deployment_id: int
    run_id: str
    restart: bool


def backoff_s(failures: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, failures - 1))


def state(deployment: Deployment, run_status: str | None) -> str:
    """What the IDE shows: listening, starting, running, restarting, stopping, stopped."""
    if deployment.desired == Deployment.Desired.STOPPED:
        return "stopping" if run_status in (*Run.ACTIVE, Run.Status.QUEUED) else "stopped"
    if run_status == Run.Status.LISTENING:
        return "listening"
    if run_status == Run.Status.RUNNING:
        return "running"
    if run_status == Run.Status.QUEUED:
        return "starting"
    return "restarting" if deployment.current_run_id else "starting"


def plan() -> tuple[list[Start], list[str]]:
    """Claim the starts this process must make, and list runs to cancel (sync)."""
    now = timezone.now()
    starts: list[Start] = []
    cancels: list[str] = []
    deployments = list(
        Deployment.objects.all().only(
            "id", "desired", "current_run_id", "failures", "start_after", "name"
        )
    )
    statuses = dict(
        Run.objects.filter(
            pk__in=[d.current_run_id for d in deployments if d.current_run_id]
        ).values_list("id", "status")
    )
    for dep in deployments:
        status = statuses.get(dep.current_run_id)
        if dep.desired == Deployment.Desired.STOPPED:
            if status in (*Run.ACTIVE, Run.Status.QUEUED):
                cancels.append(str(dep.current_run_id))
            continue
        start = _decide(dep, status, now)
        if start is not None:
            starts.append(start)
    return starts, cancels


def _decide(dep: Deployment, status: str | None, now) -> Start | None:  # noqa: ANN001
    if dep.current_run_id is not None and status not in Run.FINAL:
        if status is not None:
            return None  # queued, running or listening
        if dep.start_after is not None and dep.start_after > now:
            return None  # a start of ours is still being stored
    ended = dep.current_run_id is not None and status in Run.FINAL
    if ended and status != Run.Status.LOST:
        if dep.start_after is None:  # first look at this end: back off
            failures = dep.failures + 1
            Deployment.objects.filter(pk=dep.pk, current_run_id=dep.current_run_id).update(
                failures=failures,
                start_after=now + timedelta(seconds=backoff_s(failures)),
                last_end=f"run {dep.current_run_id} ended {status}",
            )
            return None
        if dep.start_after > now:
            return None
    new_id = str(uuid.uuid4())
    changes = {
        "current_run_id": new_id,
        "last_started": now,
        "start_after": now + timedelta(seconds=60),  # a start that never got stored is retried
    }
    if ended:
        changes["restarts"] = F("restarts") + 1
        if status == Run.Status.LOST:
            changes["last_end"] = f"run {dep.current_run_id} was lost (its worker died)"
    if not Deployment.objects.filter(pk=dep.pk, current_run_id=dep.current_run_id).update(
        **changes
    ):
        return None
    return Start(dep.pk, new_id, ended)


def after_started(deployment_id: int, run_id: str) -> None:
    Deployment.objects.filter(pk=deployment_id, current_run_id=run_id).update(start_after=None)


async def start(item: Start, nc) -> None:  # noqa: ANN001 - nats Client
    from asgiref.sync import sync_to_async

    dep = await Deployment.objects.select_related("script", "version", "configured_by").aget(
        pk=item.deployment_id
    )
    try:
        target = await sync_to_async(targets.resolve_for)(dep)
        await targets.astart(
            target,
            args=dict(dep.args or {}),
            started_by="user",
            trigger=f"deployment {dep.name} #{dep.pk}" + (" (restart)" if item.restart else ""),
            nc=nc,
            run_id=item.run_id,
            listener_key=dep.listener_key,
            **dep.acting_for(),
        )
    except Exception as exc:  # noqa: BLE001 - shown on the deployment; retried after back-off
        log.warning("deployment %s: could not start: %s", dep.pk, exc)
        await Deployment.objects.filter(pk=dep.pk, current_run_id=item.run_id).aupdate(
            current_run_id=None,
            failures=F("failures") + 1,
            start_after=timezone.now() + timedelta(seconds=backoff_s(dep.failures + 1)),
            last_end=f"could not start: {exc}"[:500],
        )
        return
    await sync_to_async(after_started)(dep.pk, item.run_id)
    log.info("deployment %s: started run %s", dep.pk, item.run_id)


def set_desired(deployment: Deployment, desired: str, user: Any = None) -> str | None:
    """Start or stop (sync); returns the run to cancel when stopping. Who starts
    it configures it: its runs act for them from then on."""
    changes: dict = {"desired": desired, "updated": timezone.now()}
    if desired == Deployment.Desired.RUNNING:
        changes.update(
            failures=0,
            start_after=None,
            current_run_id=None,
            listener_key=new_listener_key(),
            configured_by=user,
        )
        # Only a stopped deployment is started afresh; a running one keeps its run.
        Deployment.objects.filter(pk=deployment.pk, desired=Deployment.Desired.STOPPED).update(
            **changes
        )
        return None
    Deployment.objects.filter(pk=deployment.pk).update(**changes)
    run_id = Deployment.objects.filter(pk=deployment.pk).values_list("current_run_id", flat=True)
    current = run_id.first()
    return str(current) if current else None


# -- event counts ------------------------------------------------------------

LAST_EVENTS = 10


def current_runs() -> dict[str, int]:
    """Run id -> deployment id, for the runs deployments hold now (sync)."""
    return {
        str(run_id): dep_id
        for dep_id, run_id in Deployment.objects.exclude(current_run_id=None).values_list(
            "id", "current_run_id"
        )
    }


def add_events(counts: dict[int, int], last: dict[int, list[dict]]) -> None:
    """Add counted events to deployments and keep their last few (sync)."""
    now = timezone.now()
    for dep_id, n in counts.items():
        recent = last.get(dep_id, [])[-LAST_EVENTS:]
        if len(recent) < LAST_EVENTS:
            kept = (
                Deployment.objects.filter(pk=dep_id).values_list("last_events", flat=True).first()
            )
            recent = ((kept or []) + recent)[-LAST_EVENTS:]
        Deployment.objects.filter(pk=dep_id).update(
            events=F("events") + n, last_events=recent, last_event_at=now
        )


def create(*, name: str, script: Any, version: Any, args: dict, user: Any) -> Deployment:
    """Deploy a script on a pinned version (the latest saved when none is given) (sync)."""
    target = targets.resolve(script, version)
    return Deployment.objects.create(
        name=(name or target.script.name).strip()[:200],
        script=target.script,
        version=target.version,
        args=clean_args(args),
        created_by=user,
        configured_by=user,
    )
