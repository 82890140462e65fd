"""REST endpoints for runs: start, history, status, output, result, cancel."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db import IntegrityError
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status
from pydantic import Field

from ide import devicecalls
from ide.api.auth import ApiError, needs
from ide.api.schemas import (
    Cancelled,
    DeviceCallDetail,
    DeviceCalls,
    PlanOut,
    ReplayRequest,
    RunList,
    RunOut,
    RunOutput,
    RunRequest,
    RunResult,
)
from ide.api.serialize import line_json, run_json
from ide.models import LastArguments
from ide.runfilters import RunFilters, attach_version_numbers
from oktoscripts.roles import Capability, can
from oktoscripts.runs.models import Run, RunOutputLine
from oktoscripts.runs.submit import RunQueueError, cancel_run
from oktoscripts.scripts import audit
from oktoscripts.scripts.models import Script, ScriptVersion
from oktoscripts.scripts.start import Origin, Source, start_run

router = Router(tags=["runs"])
READ, RUN = needs(Capability.READ), needs(Capability.RUN)


class RunQuery(Schema):
    script: str = Field("", description="script name")
    status: Run.Status | None = Field(None, description="run status")
    started_by: str = Field("", description="a username, or schedule/event/api/cli")
    since: datetime | None = Field(None, description="ISO 8601 time")
    until: datetime | None = Field(None, description="ISO 8601 time")
    before: str = Field("", description="the next_before cursor of the previous page")


class OutputQuery(Schema):
    after: int = Field(0, ge=0, description="only lines with a greater seq")
    limit: int = Field(1000, ge=1, le=5000, description="at most this many lines")


def _version(script: Script, number: int | None) -> ScriptVersion:
    if script.deleted:
        raise ApiError("this script is deleted; restore it first", 409)
    if number is not None:
        return get_object_or_404(ScriptVersion, script=script, number=number)
    if script.latest is None:
        raise ApiError("this script has no saved version", 409)
    return script.latest


def _source(request: HttpRequest, script: Script, body: RunRequest) -> Source:
    """A saved version, or with ``code`` a draft: unsaved text run as the script
    without making a version (running text one could not save needs EDIT too)."""
    if body.code is None:
        return Source.saved(_version(script, body.version), script)
    if body.version is not None:
        raise ApiError("give either version or code, not both")
    if script.deleted:
        raise ApiError("this script is deleted; restore it first", 409)
    if not can(request.user, Capability.EDIT):
        raise ApiError("running unsaved code needs the permission to edit scripts", 403)
    return Source.draft(script, body.code)


@router.post("/runs", response={201: RunOut}, summary="Run a saved script version", **RUN)
def create_run(request: HttpRequest, body: RunRequest) -> Status:
    script = get_object_or_404(Script.objects.select_related("latest"), pk=body.script_id)
    source = _source(request, script, body)
    started_by = "api" if "Authorization" in request.headers else "user"
    try:
        run = start_run(
            source,
            user=request.user,
            args=body.args,
            origin=Origin(started_by, mode=body.mode, debug=body.debug),
            run_id=str(body.run_id) if body.run_id else None,
        )
    except IntegrityError:
        raise ApiError("a run with this run_id exists already", 409) from None
    except RunQueueError as exc:
        raise ApiError(str(exc), 503) from None
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    run.version_number = source.version.number if source.version is not None else None
    # What this person ran the script with: the editor offers it again next time.
    LastArguments.remember(request.user, script.pk, run.args)
    return Status(201, run_json(run))


@router.get("/runs", response=RunList, summary="Run history, newest first", **READ)
def list_runs(request: HttpRequest, query: Query[RunQuery]) -> dict:
    filters = RunFilters(
        script=query.script.strip(),
        status=query.status or "",
        started_by=query.started_by.strip(),
        since=query.since,
        until=query.until,
        before=query.before.strip(),
    )
    page = filters.page()
    return {"runs": [run_json(r) for r in page.rows], "next_before": page.next_cursor}


@router.get("/runs/{uuid:run_id}", response=RunOut, summary="Status of a run", **READ)
def get_run(request: HttpRequest, run_id: UUID) -> dict:
    run = get_object_or_404(Run.objects.select_related("user").defer("code"), pk=run_id)
    attach_version_numbers([run])
    return run_json(run)


@router.get(
    "/runs/{uuid:run_id}/output", response=RunOutput, summary="Output lines of a run", **READ
)
def run_output(request: HttpRequest, run_id: UUID, query: Query[OutputQuery]) -> dict:
    run = get_object_or_404(Run.objects.only("id", "status"), pk=run_id)
    lines = list(
        RunOutputLine.objects.filter(run=run, seq__gt=query.after).order_by("seq")[: query.limit]
    )
    return {
        "status": run.status,
        "lines": [line_json(x) for x in lines],
        "more": len(lines) == query.limit,
    }


class SearchQuery(Schema):
    q: str = Field(min_length=1, max_length=200, description="text to find (any case)")
    limit: int = Field(10_000, ge=1, le=10_000, description="at most this many matches")


class OutputMatches(Schema):
    seqs: list[int] = Field(description="the seq of every matching line, in order")
    more: bool = Field(description="there are more matches than the limit")


@router.get(
    "/runs/{uuid:run_id}/output/search",
    response=OutputMatches,
    summary="Which output lines of a run contain a text",
    **READ,
)
def search_output(request: HttpRequest, run_id: UUID, query: Query[SearchQuery]) -> dict:
    """The console searches a long run here instead of fetching every line."""
    run = get_object_or_404(Run.objects.only("id"), pk=run_id)
    seqs = list(
        RunOutputLine.objects.filter(run=run, text__icontains=query.q)
        .order_by("seq")
        .values_list("seq", flat=True)[: query.limit + 1]
    )
    return {"seqs": seqs[: query.limit], "more": len(seqs) > query.limit}


@router.get("/runs/{uuid:run_id}/output/text", summary="All output of a run as a text file", **READ)
def run_output_text(request: HttpRequest, run_id: UUID) -> StreamingHttpResponse:
    """One line per output line, ``time  [stream/level]  text``, streamed: a run of
    any size downloads without being held in memory."""
    run = get_object_or_404(Run.objects.only("id", "script_name"), pk=run_id)
    lines = (
        RunOutputLine.objects.filter(run=run)
        .order_by("seq")
        .values_list("time", "stream", "level", "text")
        .iterator(chunk_size=5000)
    )
    response = StreamingHttpResponse(
        (_text_line(*x) for x in lines), content_type="text/plain; charset=utf-8"
    )
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in run.script_name)
    response["Content-Disposition"] = f'attachment; filename="{name}-{run.pk}.log"'
    return response


def _text_line(at: datetime, stream: str, level: str | None, text: str) -> str:
    kind = f"{stream}/{level}" if level else stream
    return f"{at.isoformat(timespec='milliseconds')}  [{kind}]  {text}\n"


@router.get(
    "/runs/{uuid:run_id}/calls",
    response=DeviceCalls,
    summary="The device calls of a run (also while it runs)",
    **READ,
)
async def run_calls(request: HttpRequest, run_id: UUID) -> dict:
    """Each call's device, RPC, start, duration and script line: the run page's timeline."""
    found = await devicecalls.listing(str(run_id))
    if found is None:
        raise ApiError("no such run", 404)
    return found


@router.get(
    "/runs/{uuid:run_id}/calls/{int:seq}",
    response=DeviceCallDetail,
    summary="One device call with its request and answer as sent and got",
    **READ,
)
async def run_call(request: HttpRequest, run_id: UUID, seq: int) -> dict:
    """``seq``: the seq of the call's output line. The request as it goes on the
    wire (CWMP: the SOAP envelope; USP: the Msg as JSON), the answer as the
    script got it (a CWMP fault: the CPE's XML)."""
    found = await devicecalls.one(str(run_id), seq)
    if found is None:
        raise ApiError("no device call printed this line", 404)
    return found


@router.get(
    "/runs/{uuid:run_id}/result",
    response=RunResult,
    summary="Result, error and metrics of a run",
    **READ,
)
def run_result(request: HttpRequest, run_id: UUID) -> dict:
    run = get_object_or_404(
        Run.objects.only("id", "status", "result", "error", "metrics"), pk=run_id
    )
    return {
        "status": run.status,
        "final": run.is_final,
        "result": run.result,
        "error": run.error,
        "metrics": run.metrics,
    }


@router.post("/runs/{uuid:run_id}/cancel", response=Cancelled, summary="Cancel a run", **RUN)
def cancel(request: HttpRequest, run_id: UUID) -> dict:
    run = get_object_or_404(Run.objects.only("id", "script_name"), pk=run_id)
    status = cancel_run(str(run.pk))
    audit.record(request.user, "run.cancel", run.script_name, run=str(run.pk), outcome=status)
    return {"id": str(run.pk), "status": status}


@router.get(
    "/runs/{uuid:run_id}/plan",
    response=PlanOut,
    summary="The plan of a run in plan mode, and the runs that applied it",
    **READ,
)
def run_plan(request: HttpRequest, run_id: UUID) -> dict:
    from oktoscripts.scripts import apply

    run = get_object_or_404(Run.objects.only("id", "status", "mode", "metrics"), pk=run_id)
    if run.mode != Run.Mode.PLAN:
        raise ApiError("this run was not run in plan mode", 409)
    plan = (run.metrics or {}).get("plan")
    applications = Run.objects.filter(plan_of=run).order_by("created").values_list("id", flat=True)
    return {
        "run_id": str(run.pk),
        "status": run.status,
        "plan": plan,
        "summary": apply.summary(plan or {}),
        "applications": [str(a) for a in applications],
    }


@router.post(
    "/runs/{uuid:run_id}/apply",
    response={201: RunOut},
    summary="Apply the plan of a finished plan-mode run: a run that makes the planned "
    "writes where the devices still hold the values the plan read",
    **RUN,
)
def apply_plan(request: HttpRequest, run_id: UUID) -> Status:
    from oktoscripts.scripts.apply import start_apply

    run = get_object_or_404(Run, pk=run_id)
    started_by = "api" if "Authorization" in request.headers else "user"
    try:
        applied = start_apply(run, request.user, started_by)
    except RunQueueError as exc:
        raise ApiError(str(exc), 503) from None
    except ValueError as exc:
        raise ApiError(str(exc), 409) from None
    return Status(201, run_json(applied))


@router.post(
    "/runs/{uuid:run_id}/replay",
    response={201: RunOut},
    summary="Replay a finished run: the same version and arguments, its device calls "
    "answered from the run's recording (no device is reached)",
    **RUN,
)
def replay_run(request: HttpRequest, run_id: UUID, body: ReplayRequest | None = None) -> Status:
    from oktoscripts.scripts.replay import start_replay

    run = get_object_or_404(Run, pk=run_id)
    started_by = "api" if "Authorization" in request.headers else "user"
    try:
        replay = start_replay(run, request.user, started_by, body.version if body else None)
    except RunQueueError as exc:
        raise ApiError(str(exc), 503) from None
    except ValueError as exc:
        raise ApiError(str(exc), 409) from None
    return Status(201, run_json(replay))
