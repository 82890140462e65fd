"""REST endpoints of automations: schedules, bulk runs, event triggers, deployments.

Reading needs ``read``; creating, changing, starting and stopping needs
``run_scripts`` (Operators and Admins: "Operators run and schedule, Authors
cannot"). Every change is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import ProtectedError
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from ide.api import routes
from ide.api.auth import ApiError, api_endpoint, json_body
from ide.api.routes import INT, OBJ, STR, Route
from oktoscripts.automations import bulk, deployments, schedules, targets, triggers
from oktoscripts.automations.models import BulkRun, BulkRunItem, Deployment, Schedule, Trigger
from oktoscripts.roles import Capability
from oktoscripts.runs.models import Run
from oktoscripts.scripts import arguments, audit
from oktoscripts.scripts.models import Script

ITEMS_PAGE = 1000


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


# -- request fields ------------------------------------------------------------


def clean_args(raw: object) -> dict[str, Any]:
    try:
        return arguments.clean_args(raw)
    except arguments.ArgumentError as exc:
        raise ApiError(str(exc)) from None


def script_and_version(body: dict, *, required: bool = True) -> tuple[Script | None, Any]:
    """The script (``script_id``) and pinned version (``version`` number or null)."""
    script_id = body.get("script_id")
    if script_id is None and not required:
        return None, None
    if not isinstance(script_id, int):
        raise ApiError("'script_id' (an integer) is required")
    script = get_object_or_404(Script, pk=script_id)
    number = body.get("version")
    if number is not None and not isinstance(number, int):
        raise ApiError("'version' must be a version number or null (latest saved)")
    try:
        return script, targets.pin(script, number)
    except targets.TargetError as exc:
        raise ApiError(str(exc), 404) from None


def _checked(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise ApiError(str(exc)) from None


def _bool(body: dict, name: str) -> bool:
    value = body[name]
    if not isinstance(value, bool):
        raise ApiError(f"'{name}' must be true or false")
    return value


def _str(body: dict, name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(f"'{name}' must be a string")
    return value


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


# -- schedules ---------------------------------------------------------------------


def schedule_json(s: Schedule, detail: bool = False) -> dict[str, Any]:
    data = {
        "id": s.pk, "name": s.name, "cron": s.cron, "timezone": s.timezone,
        "enabled": s.enabled, "missed": s.missed, "next_tick": _iso(s.next_tick),
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
            {"tick": _iso(t.tick), "outcome": t.outcome, "missed": t.missed,
             "run_id": str(t.run_id) if t.run_id else None, "message": t.message,
             "claimed_by": t.claimed_by}
            for t in s.ticks.all()[:20]
        ]
    return data


def _schedules() -> Any:
    return Schedule.objects.select_related("script", "version", "created_by", "configured_by")


@api_endpoint(Capability.READ)
def list_schedules(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"schedules": [schedule_json(s) for s in _schedules()]})


def _fields(body: dict, strings: tuple[str, ...]) -> dict[str, Any]:
    """The fields of a schedule or trigger the body names: ``strings``, enabled, args."""
    fields: dict[str, Any] = {name: _str(body, name) for name in strings if name in body}
    if "enabled" in body:
        fields["enabled"] = _bool(body, "enabled")
    if "args" in body:
        fields["args"] = clean_args(body["args"])
    return fields


def _require(fields: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if name not in fields:
            raise ApiError(f"'{name}' is required")


def _schedule_fields(body: dict) -> dict[str, Any]:
    return _fields(body, ("name", "cron", "timezone", "missed"))


@api_endpoint(Capability.RUN)
def create_schedule(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    script, version = script_and_version(body)
    fields = _schedule_fields(body)
    _require(fields, ("name", "cron"))
    schedule = _checked(schedules.save, Schedule(script=script, created_by=request.user,
                                                  configured_by=request.user),
                        version=version, **fields)
    audit.record(request.user, "schedule.create", schedule.name, id=schedule.pk,
                 cron=schedule.cron, timezone=schedule.timezone, script=script.name)
    return JsonResponse(schedule_json(_schedules().get(pk=schedule.pk), True), status=201)


@api_endpoint(Capability.READ)
def get_schedule(request: HttpRequest, schedule_id: int) -> JsonResponse:
    return JsonResponse(schedule_json(_schedules().get(pk=schedule_id), True))


def _update(request: HttpRequest, records: Any, pk: int, fields_of: Callable[[dict], dict],
            save: Callable[..., Any], kind: str) -> None:
    """PATCH of a schedule or a trigger: the fields the body names (a ``version``
    re-pinned on the record's own script), saved and audited as ``<kind>.update``.
    Whoever changes it configures it: its runs act for them from then on."""
    body = json_body(request)
    record = records.get(pk=pk)
    record.configured_by = request.user
    fields = fields_of(body)
    if "version" in body:
        fields["version"] = script_and_version({"script_id": record.script_id,
                                                "version": body["version"]})[1]
    _checked(save, record, **fields)
    audit.record(request.user, f"{kind}.update", record.name, id=record.pk,
                 changed=sorted(fields))


@api_endpoint(Capability.RUN)
def update_schedule(request: HttpRequest, schedule_id: int) -> JsonResponse:
    _update(request, _schedules(), schedule_id, _schedule_fields, schedules.save, "schedule")
    return JsonResponse(schedule_json(_schedules().get(pk=schedule_id), True))


@api_endpoint(Capability.RUN)
def delete_schedule(request: HttpRequest, schedule_id: int) -> JsonResponse:
    schedule = Schedule.objects.get(pk=schedule_id)
    schedule.delete()
    audit.record(request.user, "schedule.delete", schedule.name, id=schedule_id)
    return JsonResponse({"deleted": schedule_id})


@api_endpoint(Capability.READ)
def preview_schedule(request: HttpRequest) -> JsonResponse:
    body = json_body(request) if request.method == "POST" else dict(request.GET.items())
    cron, tz = body.get("cron", ""), body.get("timezone") or "UTC"
    try:
        count = int(body.get("count") or 5)
    except (TypeError, ValueError):
        raise ApiError("'count' must be an integer") from None
    if not isinstance(cron, str) or not isinstance(tz, str):
        raise ApiError("'cron' and 'timezone' must be strings")
    ticks = _checked(schedules.preview, cron, tz, count)
    return JsonResponse({"cron": cron, "timezone": tz, "next": [t.isoformat() for t in ticks]})


# -- bulk runs ---------------------------------------------------------------------


def bulk_json(b: BulkRun, detail: bool = False, status: str = "") -> dict[str, Any]:
    data = {
        "id": b.pk, "name": b.name, "status": b.status, "device_filter": b.device_filter,
        "serial_arg": b.serial_arg, "concurrency": b.concurrency,
        "finished": _iso(b.finished), "progress": bulk.progress(b), **_script_json(b),
    }
    if detail:
        items = b.items.all()
        if status:
            items = items.filter(status=status)
        data["items"] = [
            {"serial": i.serial, "status": i.status, "attempts": i.attempts,
             "run_id": str(i.run_id) if i.run_id else None, "result": i.result,
             "error": i.error, "updated": _iso(i.updated)}
            for i in items[:ITEMS_PAGE]
        ]
    return data


def _bulks() -> Any:
    return BulkRun.objects.select_related("script", "version", "created_by", "configured_by")


@api_endpoint(Capability.READ)
def list_bulk_runs(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"bulk_runs": [bulk_json(b) for b in _bulks()[:200]]})


@api_endpoint(Capability.RUN)
def create_bulk_run(request: HttpRequest) -> JsonResponse:
    from ide.api.devices import _registry

    body = json_body(request)
    script, version = script_and_version(body)
    concurrency = body.get("concurrency", 10)
    record = _checked(
        bulk.create, script=script, version=version, args=clean_args(body.get("args")),
        device_filter=body.get("device_filter") or {}, concurrency=concurrency,
        user=request.user, registry=_registry(),
        serial_arg=body.get("serial_arg") or "serial", name=str(body.get("name") or ""),
    )
    total = record.items.count()
    audit.record(request.user, "bulk.start", record.name, id=record.pk, devices=total,
                 concurrency=record.concurrency, device_filter=record.device_filter)
    return JsonResponse(bulk_json(_bulks().get(pk=record.pk)), status=201)


@api_endpoint(Capability.READ)
def get_bulk_run(request: HttpRequest, bulk_id: int) -> JsonResponse:
    status = request.GET.get("status", "")
    if status and status not in BulkRunItem.Status.values:
        raise ApiError(f"'status' must be one of {', '.join(BulkRunItem.Status.values)}")
    return JsonResponse(bulk_json(_bulks().get(pk=bulk_id), True, status))


@api_endpoint(Capability.RUN)
def stop_bulk_run(request: HttpRequest, bulk_id: int) -> JsonResponse:
    record = _bulks().get(pk=bulk_id)
    if not bulk.request_stop(record):
        raise ApiError(f"the bulk run is {record.status}: nothing to stop", 409)
    audit.record(request.user, "bulk.stop", record.name, id=record.pk)
    return JsonResponse(bulk_json(_bulks().get(pk=bulk_id)))


@api_endpoint(Capability.RUN)
def retry_bulk_run(request: HttpRequest, bulk_id: int) -> JsonResponse:
    record = _bulks().get(pk=bulk_id)
    n = _checked(bulk.retry_failed, record, request.user)
    audit.record(request.user, "bulk.retry", record.name, id=record.pk, items=n)
    return JsonResponse({**bulk_json(_bulks().get(pk=bulk_id)), "retried": n})


# -- triggers ----------------------------------------------------------------------


def trigger_json(t: Trigger) -> dict[str, Any]:
    return {
        "id": t.pk, "name": t.name, "kind": t.kind, "event": t.event,
        "device_filter": t.device_filter, "enabled": t.enabled,
        "active_since": _iso(t.active_since), "fired": t.fired,
        "last_fired": _iso(t.last_fired), **_script_json(t),
    }


def _triggers() -> Any:
    return Trigger.objects.select_related("script", "version", "created_by", "configured_by")


def _trigger_fields(body: dict) -> dict[str, Any]:
    fields = _fields(body, ("name", "kind", "event"))
    if "device_filter" in body:
        fields["device_filter"] = body["device_filter"]
    return fields


@api_endpoint(Capability.READ)
def list_triggers(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"triggers": [trigger_json(t) for t in _triggers()]})


@api_endpoint(Capability.RUN)
def create_trigger(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    script, version = script_and_version(body)
    fields = _trigger_fields(body)
    _require(fields, ("name", "kind"))
    trigger = _checked(triggers.save, Trigger(script=script, created_by=request.user,
                                                configured_by=request.user),
                       version=version, **fields)
    audit.record(request.user, "trigger.create", trigger.name, id=trigger.pk, kind=trigger.kind,
                 event=trigger.event, device_filter=trigger.device_filter, script=script.name)
    return JsonResponse(trigger_json(_triggers().get(pk=trigger.pk)), status=201)


@api_endpoint(Capability.READ)
def get_trigger(request: HttpRequest, trigger_id: int) -> JsonResponse:
    return JsonResponse(trigger_json(_triggers().get(pk=trigger_id)))


@api_endpoint(Capability.RUN)
def update_trigger(request: HttpRequest, trigger_id: int) -> JsonResponse:
    _update(request, _triggers(), trigger_id, _trigger_fields, triggers.save, "trigger")
    return JsonResponse(trigger_json(_triggers().get(pk=trigger_id)))


@api_endpoint(Capability.RUN)
def delete_trigger(request: HttpRequest, trigger_id: int) -> JsonResponse:
    trigger = Trigger.objects.get(pk=trigger_id)
    trigger.delete()
    audit.record(request.user, "trigger.delete", trigger.name, id=trigger_id)
    return JsonResponse({"deleted": trigger_id})


# -- deployments -------------------------------------------------------------------


def deployment_json(d: Deployment, run: Run | None) -> dict[str, Any]:
    status = run.status if run else None
    return {
        "id": d.pk, "name": d.name, "desired": d.desired,
        "state": deployments.state(d, status),
        "current_run_id": str(d.current_run_id) if d.current_run_id else None,
        "run_status": status, "worker_id": run.worker_id if run else None,
        "restarts": d.restarts, "last_started": _iso(d.last_started), "last_end": d.last_end,
        "events": d.events, "last_events": d.last_events, "last_event_at": _iso(d.last_event_at),
        **_script_json(d),
    }


def _deployments() -> Any:
    return Deployment.objects.select_related("script", "version", "created_by", "configured_by")


def deployments_with_runs(records: list[Deployment]) -> list[tuple[Deployment, Run | None]]:
    runs = Run.objects.defer("code").in_bulk([d.current_run_id for d in records
                                              if d.current_run_id])
    return [(d, runs.get(d.current_run_id)) for d in records]


@api_endpoint(Capability.READ)
def list_deployments(request: HttpRequest) -> JsonResponse:
    pairs = deployments_with_runs(list(_deployments()))
    return JsonResponse({"deployments": [deployment_json(d, r) for d, r in pairs]})


@api_endpoint(Capability.RUN)
def create_deployment(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    script, version = script_and_version(body)
    record = _checked(deployments.create, name=str(body.get("name") or ""), script=script,
                      version=version, args=clean_args(body.get("args")), user=request.user)
    audit.record(request.user, "deployment.create", record.name, id=record.pk,
                 script=script.name, version=record.version.number)
    return JsonResponse(deployment_json(_deployments().get(pk=record.pk), None), status=201)


@api_endpoint(Capability.READ)
def get_deployment(request: HttpRequest, deployment_id: int) -> JsonResponse:
    ((record, run),) = deployments_with_runs([_deployments().get(pk=deployment_id)])
    return JsonResponse(deployment_json(record, run))


def change_deployment(user: Any, record: Deployment, desired: str) -> str | None:
    """Start or stop a deployment (pages and API); returns a warning, if any."""
    from oktoscripts.runs.submit import cancel_run

    to_cancel = deployments.set_desired(record, desired, user)
    audit.record(user, f"deployment.{'start' if desired == 'running' else 'stop'}",
                 record.name, id=record.pk)
    if desired == Deployment.Desired.STOPPED and to_cancel:
        try:
            cancel_run(to_cancel)
        except Exception as exc:  # noqa: BLE001 - the scheduler cancels it on its next pass
            return f"the run is cancelled by the scheduler shortly ({exc})"
    return None


@api_endpoint(Capability.RUN)
def start_deployment(request: HttpRequest, deployment_id: int) -> JsonResponse:
    record = _deployments().get(pk=deployment_id)
    change_deployment(request.user, record, Deployment.Desired.RUNNING)
    ((record, run),) = deployments_with_runs([_deployments().get(pk=deployment_id)])
    return JsonResponse(deployment_json(record, run))


@api_endpoint(Capability.RUN)
def stop_deployment(request: HttpRequest, deployment_id: int) -> JsonResponse:
    record = _deployments().get(pk=deployment_id)
    warning = change_deployment(request.user, record, Deployment.Desired.STOPPED)
    ((record, run),) = deployments_with_runs([_deployments().get(pk=deployment_id)])
    return JsonResponse({**deployment_json(record, run), "warning": warning})


@api_endpoint(Capability.RUN)
def delete_deployment(request: HttpRequest, deployment_id: int) -> JsonResponse:
    record = _deployments().get(pk=deployment_id)
    if record.desired != Deployment.Desired.STOPPED:
        raise ApiError("stop the deployment before deleting it", 409)
    try:
        record.delete()
    except ProtectedError:
        raise ApiError("the deployment is still referenced", 409) from None
    audit.record(request.user, "deployment.delete", record.name, id=deployment_id)
    return JsonResponse({"deleted": deployment_id})


SCRIPT_FIELDS = {"script_id": INT, "version": {"type": ["integer", "null"],
                 "description": "pinned version; null = latest saved"}, "args": OBJ}
FILTER = {"type": "object", "description": "status (0/1/2), vendor, product_class, "
          "protocol (cwmp/usp), text (part of serial or alias)"}

ROUTES = [
    Route("GET", "/api/schedules", list_schedules, "List schedules", "automations"),
    Route("POST", "/api/schedules", create_schedule, "Create a schedule", "automations",
          status=201, body={"type": "object", "required": ["name", "script_id", "cron"],
                            "properties": {"name": STR, "cron": STR, "timezone": STR,
                                           "missed": {"type": "string",
                                                      "enum": ["skip", "run_once"]},
                                           "enabled": {"type": "boolean"}, **SCRIPT_FIELDS}}),
    Route("POST", "/api/schedules/preview", preview_schedule,
          "The next run times of a cron expression", "automations",
          body={"type": "object", "properties": {"cron": STR, "timezone": STR, "count": INT}}),
    Route("GET", "/api/schedules/{schedule_id:int}", get_schedule,
          "A schedule with its next and last ticks", "automations"),
    Route("PATCH", "/api/schedules/{schedule_id:int}", update_schedule,
          "Edit, enable or disable a schedule", "automations",
          body={"type": "object", "properties": {"name": STR, "cron": STR, "timezone": STR,
                                                 "missed": STR, "enabled": {"type": "boolean"},
                                                 "version": INT, "args": OBJ}}),
    Route("DELETE", "/api/schedules/{schedule_id:int}", delete_schedule, "Delete a schedule",
          "automations"),
    Route("GET", "/api/bulk-runs", list_bulk_runs, "Bulk runs, newest first", "automations"),
    Route("POST", "/api/bulk-runs", create_bulk_run,
          "Run a script once per device matching a filter", "automations", status=201,
          body={"type": "object", "required": ["script_id"],
                "properties": {**SCRIPT_FIELDS, "device_filter": FILTER, "concurrency": INT,
                               "serial_arg": STR, "name": STR}}),
    Route("GET", "/api/bulk-runs/{bulk_id:int}", get_bulk_run,
          "A bulk run: progress and per-device status and result", "automations",
          query=(("status", "only items with this status"),)),
    Route("POST", "/api/bulk-runs/{bulk_id:int}/stop", stop_bulk_run, "Stop a bulk run",
          "automations"),
    Route("POST", "/api/bulk-runs/{bulk_id:int}/retry", retry_bulk_run,
          "Run the items that did not succeed again", "automations"),
    Route("GET", "/api/triggers", list_triggers, "List event triggers", "automations"),
    Route("POST", "/api/triggers", create_trigger, "Create an event trigger", "automations",
          status=201, body={"type": "object", "required": ["name", "kind", "script_id"],
                            "properties": {"name": STR, "kind": {"type": "string", "enum": [
                                "cwmp_event", "new_device"]}, "event": STR,
                                "device_filter": FILTER, "enabled": {"type": "boolean"},
                                **SCRIPT_FIELDS}}),
    Route("GET", "/api/triggers/{trigger_id:int}", get_trigger, "An event trigger",
          "automations"),
    Route("PATCH", "/api/triggers/{trigger_id:int}", update_trigger,
          "Edit, enable or disable a trigger", "automations",
          body={"type": "object", "properties": {"name": STR, "event": STR,
                                                 "device_filter": FILTER,
                                                 "enabled": {"type": "boolean"},
                                                 "version": INT, "args": OBJ}}),
    Route("DELETE", "/api/triggers/{trigger_id:int}", delete_trigger, "Delete a trigger",
          "automations"),
    Route("GET", "/api/deployments", list_deployments, "Deployed listeners", "automations"),
    Route("POST", "/api/deployments", create_deployment,
          "Deploy a listening script on a pinned version", "automations", status=201,
          body={"type": "object", "required": ["script_id"],
                "properties": {"name": STR, **SCRIPT_FIELDS}}),
    Route("GET", "/api/deployments/{deployment_id:int}", get_deployment,
          "A deployment: state, event counts, last events", "automations"),
    Route("POST", "/api/deployments/{deployment_id:int}/start", start_deployment,
          "Start a stopped deployment", "automations"),
    Route("POST", "/api/deployments/{deployment_id:int}/stop", stop_deployment,
          "Stop a deployment (cancels its run)", "automations"),
    Route("DELETE", "/api/deployments/{deployment_id:int}", delete_deployment,
          "Delete a stopped deployment", "automations"),
]

routes.extend(ROUTES)
