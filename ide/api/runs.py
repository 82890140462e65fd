"""REST endpoints for runs: start, status, output, result, cancel."""

from __future__ import annotations

import uuid

from django.db import IntegrityError
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from ide.api.auth import ApiError, api_endpoint, json_body
from ide.api.serialize import line_json, run_json
from ide.runfilters import RunFilters, attach_version_numbers
from oktoscripts.roles import Capability
from oktoscripts.runs.models import Run, RunOutputLine
from oktoscripts.scripts import audit, platform_settings
from oktoscripts.scripts.models import Script, ScriptVersion

MAX_ARGS = 100


def _clean_run_id(raw: object) -> str | None:
    """A caller-chosen run id (a UUID) lets the caller open the console first."""
    if raw is None:
        return None
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        raise ApiError("'run_id' must be a UUID") from None


def _clean_args(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError("'args' must be an object of name: value")
    if len(raw) > MAX_ARGS:
        raise ApiError(f"at most {MAX_ARGS} arguments")
    args = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.strip():
            raise ApiError("argument names must be non-empty strings")
        if not isinstance(value, str | int | float | bool) or value is None:
            raise ApiError(f"argument {key!r} must be a string, number or boolean")
        args[key.strip()] = value
    return args


def start_run(user: object, script: Script, version: ScriptVersion, args: dict,
              started_by: str, run_id: str | None = None) -> Run:
    """Queue a run of an exact script version (the one place runs start from the IDE).
    The Run records its effective limits: script override > platform setting > built-in."""
    from oktoscripts.runs.submit import submit_run

    run = submit_run(
        version.content, script_name=script.name, args=args, runtime=script.runtime,
        limits=platform_settings.effective_limits(script.limits),
        started_by=started_by, user=user, script_version_id=version.pk, run_id=run_id,
    )
    audit.record(user, "run.start", script.name, run=str(run.pk), version=version.number,
                 args=args)
    return run


@api_endpoint(Capability.RUN)
def create_run(request: HttpRequest) -> JsonResponse:
    from oktoscripts.runs.submit import RunQueueError

    body = json_body(request)
    script_id = body.get("script_id")
    if not isinstance(script_id, int):
        raise ApiError("'script_id' (an integer) is required")
    script = get_object_or_404(Script.objects.select_related("latest"), pk=script_id)
    if script.deleted:
        raise ApiError("this script is deleted; restore it first", 409)
    number = body.get("version")
    if number is None:
        version = script.latest
        if version is None:
            raise ApiError("this script has no saved version", 409)
    elif isinstance(number, int):
        version = get_object_or_404(ScriptVersion, script=script, number=number)
    else:
        raise ApiError("'version' must be an integer")
    started_by = "api" if "Authorization" in request.headers else "user"
    run_id = _clean_run_id(body.get("run_id"))
    try:
        run = start_run(request.user, script, version, _clean_args(body.get("args")), started_by,
                        run_id)
    except IntegrityError:
        raise ApiError("a run with this run_id exists already", 409) from None
    except RunQueueError as exc:
        raise ApiError(str(exc), 503) from None
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    run.version_number = version.number
    return JsonResponse(run_json(run), status=201)


@api_endpoint(Capability.READ)
def list_runs(request: HttpRequest) -> JsonResponse:
    filters = RunFilters.from_query(request.GET)
    page = filters.page()
    return JsonResponse({
        "runs": [run_json(r) for r in page.rows],
        "next_before": page.next_cursor,
    })


@api_endpoint(Capability.READ)
def get_run(request: HttpRequest, run_id: str) -> JsonResponse:
    run = get_object_or_404(Run.objects.select_related("user").defer("code"), pk=run_id)
    attach_version_numbers([run])
    return JsonResponse(run_json(run))


@api_endpoint(Capability.READ)
def run_output(request: HttpRequest, run_id: str) -> JsonResponse:
    run = get_object_or_404(Run.objects.only("id", "status"), pk=run_id)
    try:
        after = int(request.GET.get("after", "0"))
        limit = min(5000, max(1, int(request.GET.get("limit", "1000"))))
    except ValueError:
        raise ApiError("'after' and 'limit' are integers") from None
    lines = list(RunOutputLine.objects.filter(run=run, seq__gt=after).order_by("seq")[:limit])
    return JsonResponse({"status": run.status, "lines": [line_json(x) for x in lines],
                         "more": len(lines) == limit})


@api_endpoint(Capability.READ)
def run_result(request: HttpRequest, run_id: str) -> JsonResponse:
    run = get_object_or_404(Run.objects.only("id", "status", "result", "error", "metrics"),
                            pk=run_id)
    return JsonResponse({"status": run.status, "final": run.is_final, "result": run.result,
                         "error": run.error, "metrics": run.metrics})


@api_endpoint(Capability.RUN)
def cancel(request: HttpRequest, run_id: str) -> JsonResponse:
    from oktoscripts.runs.submit import cancel_run

    run = get_object_or_404(Run.objects.only("id", "script_name"), pk=run_id)
    status = cancel_run(str(run.pk))
    audit.record(request.user, "run.cancel", run.script_name, run=str(run.pk), outcome=status)
    return JsonResponse({"id": str(run.pk), "status": status})
