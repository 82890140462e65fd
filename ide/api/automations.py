"""REST endpoints of automations: schedules, bulk runs, event triggers, deployments.

Reading needs ``read``; creating, changing, starting and stopping needs
``run_scripts`` (Operators and Admins: "Operators run and schedule, Authors
cannot"). Every change is written to the audit log. The ``*_json`` shapes are
the pages' too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import ProtectedError
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from pydantic import Field

from ide.api.auth import ApiError, needs
from ide.api.schemas import (
    BulkCreate,
    BulkDetail,
    BulkList,
    BulkOut,
    BulkRetried,
    Deleted,
    DeploymentCreate,
    DeploymentList,
    DeploymentOut,
    DeploymentStopped,
    Preview,
    PreviewOut,
    RolloutPolicyChange,
    RolloutPolicyOut,
    ScheduleChange,
    ScheduleCreate,
    ScheduleDetail,
    ScheduleList,
    ScriptTarget,
    TriggerChange,
    TriggerCreate,
    TriggerList,
    TriggerOut,
)
from oktoscripts.automations import bulk, deployments, rollout, schedules, targets, triggers
from oktoscripts.automations.models import (
    BulkRun,
    BulkRunItem,
    Deployment,
    RolloutPolicy,
    Schedule,
    Trigger,
)
from oktoscripts.roles import Capability
from oktoscripts.runs.models import Run
from oktoscripts.runs.submit import cancel_run
from oktoscripts.scripts import audit
from oktoscripts.scripts.models import Script

router = Router(tags=["automations"])
READ, RUN = needs(Capability.READ), needs(Capability.RUN)
ADMIN = needs(Capability.ADMIN)
ITEMS_PAGE = 1000


# -- JSON shapes (the pages' too) -------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _script_json(obj: Any) -> dict[str, Any]:
    return {
        "script_id": obj.script_id,
        "script": obj.script.name,
        "version": obj.version.number if obj.version_id else None,
        "args": obj.args,
        "created_by": obj.created_by.username if obj.created_by_id else None,
        "configured_by": obj.configured_by.username if obj.configured_by_id else None,
        "created": _iso(obj.created),
        "updated": _iso(obj.updated),
    }


def schedule_json(s: Schedule, detail: bool = False) -> dict[str, Any]:
    data = {
        "id": s.pk,
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone,
        "enabled": s.enabled,
        "missed": s.missed,
        "next_tick": _iso(s.next_tick),
        "last_tick": _iso(s.last_tick),
        "last_run_id": str(s.last_run_id) if s.last_run_id else None,
        **_script_json(s),
    }
    if detail:
        try:
            data["preview"] = [t.isoformat() for t in schedules.preview(s.cron, s.timezone, 5)]
        except schedules.ScheduleError:
            data["preview"] = []
        data["ticks"] = [
            {
                "tick": _iso(t.tick),
                "outcome": t.outcome,
                "missed": t.missed,
                "run_id": str(t.run_id) if t.run_id else None,
                "message": t.message,
                "claimed_by": t.claimed_by,
            }
            for t in s.ticks.all()[:20]
        ]
    return data


def _schedules() -> Any:
    return Schedule.objects.select_related("script", "version", "created_by", "configured_by")


def bulk_json(b: BulkRun, detail: bool = False, status: str = "") -> dict[str, Any]:
    data = {
        "id": b.pk,
        "name": b.name,
        "status": b.status,
        "device_filter": b.device_filter,
        "serial_arg": b.serial_arg,
        "concurrency": b.concurrency,
        "finished": _iso(b.finished),
        "progress": bulk.progress(b),
        **_script_json(b),
        "canary": b.canary,
        "wave_size": b.wave_size,
        "wave_percent": b.wave_percent,
        "wave_pause_s": b.wave_pause_s,
        "failure_threshold": b.failure_threshold,
        "current_wave": b.current_wave,
        "waves": rollout.waves_summary(b),
        "next_wave_at": _iso(b.next_wave_at),
        "stop_reason": b.stop_reason,
        "approved_by": b.approved_by.username if b.approved_by_id else None,
        "approved_at": _iso(b.approved_at),
    }
    if detail:
        items = b.items.all()
        if status:
            items = items.filter(status=status)
        data["items"] = [
            {
                "serial": i.serial,
                "status": i.status,
                "attempts": i.attempts,
                "run_id": str(i.run_id) if i.run_id else None,
                "result": i.result,
                "error": i.error,
                "updated": _iso(i.updated),
            }
            for i in items[:ITEMS_PAGE]
        ]
    return data


def _bulks() -> Any:
    return BulkRun.objects.select_related(
        "script", "version", "created_by", "configured_by", "approved_by"
    )


def trigger_json(t: Trigger) -> dict[str, Any]:
    return {
        "id": t.pk,
        "name": t.name,
        "kind": t.kind,
        "event": t.event,
        "device_filter": t.device_filter,
        "enabled": t.enabled,
        "active_since": _iso(t.active_since),
        "fired": t.fired,
        "last_fired": _iso(t.last_fired),
        **_script_json(t),
    }


def _triggers() -> Any:
    return Trigger.objects.select_related("script", "version", "created_by", "configured_by")


def deployment_json(d: Deployment, run: Run | None) -> dict[str, Any]:
    status = run.status if run else None
    return {
        "id": d.pk,
        "name": d.name,
        "desired": d.desired,
        "state": deployments.state(d, status),
        "current_run_id": str(d.current_run_id) if d.current_run_id else None,
        "run_status": status,
        "worker_id": run.worker_id if run else None,
        "restarts": d.restarts,
        "last_started": _iso(d.last_started),
        "last_end": d.last_end,
        "events": d.events,
        "last_events": d.last_events,
        "last_event_at": _iso(d.last_event_at),
        **_script_json(d),
    }


def _deployments() -> Any:
    return Deployment.objects.select_related("script", "version", "created_by", "configured_by")


def deployments_with_runs(records: list[Deployment]) -> list[tuple[Deployment, Run | None]]:
    runs = Run.objects.defer("code").in_bulk(
        [d.current_run_id for d in records if d.current_run_id]
    )
    return [(d, runs.get(d.current_run_id)) for d in records]


# -- requests ------------------------------------------------------------------------


def _target(body: ScriptTarget) -> tuple[Script, Any]:
    """The script (``script_id``) and pinned version (``version`` number or null)."""
    script = get_object_or_404(Script, pk=body.script_id)
    return script, _pinned(script, body.version)


def _pinned(script: Script, number: int | None) -> Any:
    try:
        return targets.pin(script, number)
    except targets.TargetError as exc:
        raise ApiError(str(exc), 404) from None


def _checked(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn`` of the automations' own code, its ValueError a 400 (the argument rule's too)."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise ApiError(str(exc)) from None


def _filter(device_filter: Any) -> dict[str, Any]:
    return device_filter.model_dump(exclude_none=True) if device_filter is not None else {}


def _update(
    request: HttpRequest, record: Any, body: Any, save: Callable[..., Any], kind: str
) -> None:
    """PATCH of a schedule or a trigger: the fields the body names (a ``version``
    re-pinned on the record's own script), saved and audited as ``<kind>.update``.
    Whoever changes it configures it: its runs act for them from then on."""
    fields = body.model_dump(exclude_unset=True)
    if "version" in fields:
        fields["version"] = _pinned(record.script, fields["version"])
    if "device_filter" in fields:
        fields["device_filter"] = _filter(body.device_filter)
    record.configured_by = request.user
    _checked(save, record, **fields)
    audit.record(request.user, f"{kind}.update", record.name, id=record.pk, changed=sorted(fields))


# -- schedules -------------------------------------------------------------------------


@router.get("/schedules", response=ScheduleList, summary="List schedules", **READ)
def list_schedules(request: HttpRequest) -> dict:
    return {"schedules": [schedule_json(s) for s in _schedules()]}


@router.post("/schedules", response={201: ScheduleDetail}, summary="Create a schedule", **RUN)
def create_schedule(request: HttpRequest, body: ScheduleCreate) -> Status:
    script, version = _target(body)
    fields = body.model_dump(include={"name", "cron", "timezone", "missed", "enabled", "args"})
    schedule = _checked(
        schedules.save,
        Schedule(script=script, created_by=request.user, configured_by=request.user),
        version=version,
        **fields,
    )
    audit.record(
        request.user,
        "schedule.create",
        schedule.name,
        id=schedule.pk,
        cron=schedule.cron,
        timezone=schedule.timezone,
        script=script.name,
    )
    return Status(201, schedule_json(_schedules().get(pk=schedule.pk), True))


@router.post(
    "/schedules/preview",
    response=PreviewOut,
    summary="The next run times of a cron expression",
    **READ,
)
def preview_schedule(request: HttpRequest, body: Preview) -> dict:
    ticks = _checked(schedules.preview, body.cron, body.timezone or "UTC", body.count)
    return {
        "cron": body.cron,
        "timezone": body.timezone or "UTC",
        "next": [t.isoformat() for t in ticks],
    }


@router.get(
    "/schedules/{int:schedule_id}",
    response=ScheduleDetail,
    summary="A schedule with its next and last ticks",
    **READ,
)
def get_schedule(request: HttpRequest, schedule_id: int) -> dict:
    return schedule_json(get_object_or_404(_schedules(), pk=schedule_id), True)


@router.patch(
    "/schedules/{int:schedule_id}",
    response=ScheduleDetail,
    summary="Edit, enable or disable a schedule",
    **RUN,
)
def update_schedule(request: HttpRequest, schedule_id: int, body: ScheduleChange) -> dict:
    record = get_object_or_404(_schedules(), pk=schedule_id)
    _update(request, record, body, schedules.save, "schedule")
    return schedule_json(_schedules().get(pk=schedule_id), True)


@router.delete("/schedules/{int:schedule_id}", response=Deleted, summary="Delete a schedule", **RUN)
def delete_schedule(request: HttpRequest, schedule_id: int) -> dict:
    schedule = get_object_or_404(Schedule, pk=schedule_id)
    schedule.delete()
    audit.record(request.user, "schedule.delete", schedule.name, id=schedule_id)
    return {"deleted": schedule_id}


# -- bulk runs -----------------------------------------------------------------------


class ItemQuery(Schema):
    status: BulkRunItem.Status | None = Field(None, description="only items with this status")


@router.get("/bulk-runs", response=BulkList, summary="Bulk runs, newest first", **READ)
def list_bulk_runs(request: HttpRequest) -> dict:
    return {"bulk_runs": [bulk_json(b) for b in _bulks()[:200]]}


@router.post(
    "/bulk-runs",
    response={201: BulkOut},
    summary="Run a script once per device matching a filter",
    **RUN,
)
def create_bulk_run(request: HttpRequest, body: BulkCreate) -> Status:
    from ide.api.devices import _registry

    script, version = _target(body)
    record = _checked(
        bulk.create,
        script=script,
        version=version,
        args=body.args,
        device_filter=_filter(body.device_filter),
        concurrency=body.concurrency,
        user=request.user,
        registry=_registry(),
        serial_arg=body.serial_arg or "serial",
        name=body.name,
        mode=body.mode,
        canary=body.canary,
        wave_size=body.wave_size,
        wave_percent=body.wave_percent,
        wave_pause_s=body.wave_pause_s,
        failure_threshold=body.failure_threshold,
    )
    total = record.items.count()
    action = "bulk.request" if record.status == BulkRun.Status.APPROVAL else "bulk.start"
    audit.record(
        request.user,
        action,
        record.name,
        id=record.pk,
        devices=total,
        concurrency=record.concurrency,
        device_filter=record.device_filter,
        canary=record.canary,
        waves=record.waves,
        failure_threshold=record.failure_threshold,
    )
    return Status(201, bulk_json(_bulks().get(pk=record.pk)))


@router.get(
    "/bulk-runs/{int:bulk_id}",
    response=BulkDetail,
    summary="A bulk run: progress and per-device status and result",
    **READ,
)
def get_bulk_run(request: HttpRequest, bulk_id: int, query: Query[ItemQuery]) -> dict:
    return bulk_json(get_object_or_404(_bulks(), pk=bulk_id), True, query.status or "")


@router.post("/bulk-runs/{int:bulk_id}/stop", response=BulkOut, summary="Stop a bulk run", **RUN)
def stop_bulk_run(request: HttpRequest, bulk_id: int) -> dict:
    record = get_object_or_404(_bulks(), pk=bulk_id)
    if not bulk.request_stop(record, f"stopped by {request.user.get_username()}"):
        raise ApiError(f"the bulk run is {record.status}: nothing to stop", 409)
    audit.record(request.user, "bulk.stop", record.name, id=record.pk)
    return bulk_json(_bulks().get(pk=bulk_id))


def _rollout_step(request: HttpRequest, bulk_id: int, step: Callable, action: str) -> dict:
    record = get_object_or_404(_bulks(), pk=bulk_id)
    try:
        step(record, request.user) if step is rollout.approve else step(record)
    except rollout.RolloutError as exc:
        status = 403 if "cannot be the person" in str(exc) else 409
        raise ApiError(str(exc), status) from None
    audit.record(request.user, action, record.name, id=record.pk)
    return bulk_json(_bulks().get(pk=bulk_id))


@router.post(
    "/bulk-runs/{int:bulk_id}/approve",
    response=BulkOut,
    summary="Approve a bulk run awaiting approval (not the person who created it)",
    **RUN,
)
def approve_bulk_run(request: HttpRequest, bulk_id: int) -> dict:
    return _rollout_step(request, bulk_id, rollout.approve, "bulk.approve")


@router.post(
    "/bulk-runs/{int:bulk_id}/pause",
    response=BulkOut,
    summary="Pause a bulk run: running items finish, none starts",
    **RUN,
)
def pause_bulk_run(request: HttpRequest, bulk_id: int) -> dict:
    return _rollout_step(request, bulk_id, rollout.pause, "bulk.pause")


@router.post(
    "/bulk-runs/{int:bulk_id}/resume", response=BulkOut, summary="Resume a paused bulk run", **RUN
)
def resume_bulk_run(request: HttpRequest, bulk_id: int) -> dict:
    return _rollout_step(request, bulk_id, rollout.resume, "bulk.resume")


@router.get(
    "/bulk-runs/policy",
    response=RolloutPolicyOut,
    summary="Above how many devices a bulk run needs approval",
    **READ,
)
def get_rollout_policy(request: HttpRequest) -> dict:
    return _policy_json(RolloutPolicy.load())


@router.put(
    "/bulk-runs/policy",
    response=RolloutPolicyOut,
    summary="Set above how many devices a bulk run needs approval (Admin)",
    **ADMIN,
)
def set_rollout_policy(request: HttpRequest, body: RolloutPolicyChange) -> dict:
    if body.approval_above is not None and body.approval_above < 0:
        raise ApiError("approval_above must be >= 0 or null")
    policy = RolloutPolicy.load()
    policy.approval_above = body.approval_above
    policy.updated, policy.updated_by = timezone.now(), request.user
    policy.save()
    audit.record(request.user, "bulk.policy", "rollout policy", approval_above=body.approval_above)
    return _policy_json(policy)


def _policy_json(policy: RolloutPolicy) -> dict:
    return {
        "approval_above": policy.approval_above,
        "updated": _iso(policy.updated),
        "updated_by": policy.updated_by.username if policy.updated_by_id else None,
    }


@router.post(
    "/bulk-runs/{int:bulk_id}/retry",
    response=BulkRetried,
    summary="Run the items that did not succeed again",
    **RUN,
)
def retry_bulk_run(request: HttpRequest, bulk_id: int) -> dict:
    record = get_object_or_404(_bulks(), pk=bulk_id)
    n = _checked(bulk.retry_failed, record, request.user)
    audit.record(request.user, "bulk.retry", record.name, id=record.pk, items=n)
    return {**bulk_json(_bulks().get(pk=bulk_id)), "retried": n}


# -- triggers ------------------------------------------------------------------------


@router.get("/triggers", response=TriggerList, summary="List event triggers", **READ)
def list_triggers(request: HttpRequest) -> dict:
    return {"triggers": [trigger_json(t) for t in _triggers()]}


@router.post("/triggers", response={201: TriggerOut}, summary="Create an event trigger", **RUN)
def create_trigger(request: HttpRequest, body: TriggerCreate) -> Status:
    script, version = _target(body)
    fields = body.model_dump(include={"name", "kind", "event", "enabled", "args"})
    fields["device_filter"] = _filter(body.device_filter)
    trigger = _checked(
        triggers.save,
        Trigger(script=script, created_by=request.user, configured_by=request.user),
        version=version,
        **fields,
    )
    audit.record(
        request.user,
        "trigger.create",
        trigger.name,
        id=trigger.pk,
        kind=trigger.kind,
        event=trigger.event,
        device_filter=trigger.device_filter,
        script=script.name,
    )
    return Status(201, trigger_json(_triggers().get(pk=trigger.pk)))


@router.get("/triggers/{int:trigger_id}", response=TriggerOut, summary="An event trigger", **READ)
def get_trigger(request: HttpRequest, trigger_id: int) -> dict:
    return trigger_json(get_object_or_404(_triggers(), pk=trigger_id))


@router.patch(
    "/triggers/{int:trigger_id}",
    response=TriggerOut,
    summary="Edit, enable or disable a trigger",
    **RUN,
)
def update_trigger(request: HttpRequest, trigger_id: int, body: TriggerChange) -> dict:
    record = get_object_or_404(_triggers(), pk=trigger_id)
    _update(request, record, body, triggers.save, "trigger")
    return trigger_json(_triggers().get(pk=trigger_id))


@router.delete("/triggers/{int:trigger_id}", response=Deleted, summary="Delete a trigger", **RUN)
def delete_trigger(request: HttpRequest, trigger_id: int) -> dict:
    trigger = get_object_or_404(Trigger, pk=trigger_id)
    trigger.delete()
    audit.record(request.user, "trigger.delete", trigger.name, id=trigger_id)
    return {"deleted": trigger_id}


# -- deployments -----------------------------------------------------------------------


def _deployment(deployment_id: int) -> dict:
    ((record, run),) = deployments_with_runs([get_object_or_404(_deployments(), pk=deployment_id)])
    return deployment_json(record, run)


@router.get("/deployments", response=DeploymentList, summary="Deployed listeners", **READ)
def list_deployments(request: HttpRequest) -> dict:
    pairs = deployments_with_runs(list(_deployments()))
    return {"deployments": [deployment_json(d, r) for d, r in pairs]}


@router.post(
    "/deployments",
    response={201: DeploymentOut},
    summary="Deploy a listening script on a pinned version",
    **RUN,
)
def create_deployment(request: HttpRequest, body: DeploymentCreate) -> Status:
    script, version = _target(body)
    record = _checked(
        deployments.create,
        name=body.name,
        script=script,
        version=version,
        args=body.args,
        user=request.user,
    )
    audit.record(
        request.user,
        "deployment.create",
        record.name,
        id=record.pk,
        script=script.name,
        version=record.version.number,
    )
    return Status(201, deployment_json(_deployments().get(pk=record.pk), None))


@router.get(
    "/deployments/{int:deployment_id}",
    response=DeploymentOut,
    summary="A deployment: state, event counts, last events",
    **READ,
)
def get_deployment(request: HttpRequest, deployment_id: int) -> dict:
    return _deployment(deployment_id)


def change_deployment(user: Any, record: Deployment, desired: str) -> str | None:
    """Start or stop a deployment (pages and API); returns a warning, if any."""
    to_cancel = deployments.set_desired(record, desired, user)
    audit.record(
        user, f"deployment.{'start' if desired == 'running' else 'stop'}", record.name, id=record.pk
    )
    if desired == Deployment.Desired.STOPPED and to_cancel:
        try:
            cancel_run(to_cancel)
        except Exception as exc:  # noqa: BLE001 - the scheduler cancels it on its next pass
            return f"the run is cancelled by the scheduler shortly ({exc})"
    return None


@router.post(
    "/deployments/{int:deployment_id}/start",
    response=DeploymentOut,
    summary="Start a stopped deployment",
    **RUN,
)
def start_deployment(request: HttpRequest, deployment_id: int) -> dict:
    record = get_object_or_404(_deployments(), pk=deployment_id)
    change_deployment(request.user, record, Deployment.Desired.RUNNING)
    return _deployment(deployment_id)


@router.post(
    "/deployments/{int:deployment_id}/stop",
    response=DeploymentStopped,
    summary="Stop a deployment (cancels its run)",
    **RUN,
)
def stop_deployment(request: HttpRequest, deployment_id: int) -> dict:
    record = get_object_or_404(_deployments(), pk=deployment_id)
    warning = change_deployment(request.user, record, Deployment.Desired.STOPPED)
    return {**_deployment(deployment_id), "warning": warning}


@router.delete(
    "/deployments/{int:deployment_id}",
    response=Deleted,
    summary="Delete a stopped deployment",
    **RUN,
)
def delete_deployment(request: HttpRequest, deployment_id: int) -> dict:
    record = get_object_or_404(_deployments(), pk=deployment_id)
    if record.desired != Deployment.Desired.STOPPED:
        raise ApiError("stop the deployment before deleting it", 409)
    try:
        record.delete()
    except ProtectedError:
        raise ApiError("the deployment is still referenced", 409) from None
    audit.record(request.user, "deployment.delete", record.name, id=deployment_id)
    return {"deleted": deployment_id}


class BulkApplied(Schema):
    run_id: str = Field(description="the run applying the plan")


@router.post(
    "/bulk-runs/{int:bulk_id}/apply",
    response={201: BulkApplied},
    summary="Apply a finished bulk plan: one run making every device's planned "
    "writes where the values still match",
    **RUN,
)
def apply_bulk_plan(request: HttpRequest, bulk_id: int) -> Status:
    from oktoscripts.runs.submit import RunQueueError
    from oktoscripts.scripts.apply import start_bulk_apply

    record = get_object_or_404(_bulks(), pk=bulk_id)
    try:
        run = start_bulk_apply(record, request.user, "user")
    except RunQueueError as exc:
        raise ApiError(str(exc), 503) from None
    except ValueError as exc:
        raise ApiError(str(exc), 409) from None
    audit.record(request.user, "bulk.apply", record.name, id=record.pk, run=str(run.pk))
    return Status(201, {"run_id": str(run.pk)})
