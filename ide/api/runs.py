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
from oktoscripts.scripts import audit
from oktoscripts.scripts.models import Script, ScriptVersion
from oktoscripts.scripts.start import Origin, Source, start_run


def _clean_run_id(raw: object) -> str | None:
    """A caller-chosen run id (a UUID) lets the caller open the console first."""
    if raw is None:
        return None
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        raise ApiError("'run_id' must be a UUID") from None


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
        run = start_run(Source.saved(version, script), user=request.user, args=body.get("args"),
                        origin=Origin(started_by), run_id=run_id)
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
