"""REST endpoints of scripts' test fixtures (oktoscripts/scripts/fixtures.py).

Reading fixtures and their last verdicts needs ``read``; saving and deleting
one changes the script's tests, so it needs ``edit_scripts`` (Authors and
Admins); running them starts replay runs, so it needs ``run_scripts``
(Operators and Admins), like a replay. Saving and deleting are audited (a run
is audited when it starts).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field, StrictBool, StrictInt, StrictStr

from ide.api.auth import ApiError, needs
from ide.api.schemas import Json, Request, Time
from oktoscripts.roles import Capability
from oktoscripts.runs.models import Run
from oktoscripts.runs.submit import RunQueueError
from oktoscripts.scripts import audit, fixtures
from oktoscripts.scripts.models import Fixture, Script, ScriptVersion

router = Router(tags=["fixtures"])
READ, EDIT, RUN = needs(Capability.READ), needs(Capability.EDIT), needs(Capability.RUN)
FinalStatus = Literal["succeeded", "failed", "cancelled", "limit_exceeded", "lost"]


class FixtureRequest(Request):
    run_id: UUID = Field(description="the finished run of this script whose recording to keep")
    name: StrictStr = Field(description="unique per script; 'all' is reserved")
    expected_result: Json = Field(
        None, description="what the script must return (default: what the run returned)"
    )
    expected_status: FinalStatus | None = Field(
        None, description="how the run must end (default: as the run ended)"
    )
    check_output: StrictBool = Field(
        True, description="the replay must print the run's printed and logged lines too"
    )


class FixtureRunRequest(Request):
    names: list[StrictStr] | None = Field(None, description="which fixtures (default: all)")
    version: StrictInt | None = Field(
        None, description="the script version to run them against (default: the latest)"
    )


class LastRun(Schema):
    run_id: str
    status: str
    final: bool
    version: int | None
    passed: bool | None = Field(description="null while the run runs")
    difference: str = Field(description="the first difference found, when it failed")
    diverged: bool = Field(description="the script asked for a call the recording does not have")


class FixtureOut(Schema):
    id: int
    name: str
    script_id: int
    args: dict[str, Json]
    expected_status: str
    expected_result: Json
    expected_output: list[str] | None
    calls: int = Field(description="device calls in the recording")
    source_run: str | None
    source_version: int | None
    created: Time
    created_by: str | None
    last_run: LastRun | None


class FixtureList(Schema):
    results: list[FixtureOut]


class FixtureRunOut(Schema):
    fixture: str
    run_id: str


class FixtureRuns(Schema):
    runs: list[FixtureRunOut]


def _script(script_id: int) -> Script:
    return get_object_or_404(Script.objects.select_related("latest"), pk=script_id)


def _last_run_json(run: Any, fixture: Fixture) -> dict | None:
    if run is None:
        return None
    verdict = fixtures.run_verdict(run, fixture)
    version = (
        ScriptVersion.objects.filter(pk=run.script_version_id)
        .values_list("number", flat=True)
        .first()
    )
    return {
        "run_id": str(run.pk),
        "status": run.status,
        "final": run.is_final,
        "version": version,
        "passed": verdict.passed if verdict else None,
        "difference": verdict.difference if verdict else "",
        "diverged": verdict.diverged if verdict else False,
    }


def fixture_json(f: Fixture, last: Any = None) -> dict:
    return {
        "id": f.pk,
        "name": f.name,
        "script_id": f.script_id,
        "args": f.args,
        "expected_status": f.expected_status,
        "expected_result": f.expected_result,
        "expected_output": f.expected_output,
        "calls": len((f.recording or {}).get("calls") or []),
        "source_run": str(f.source_run_id) if f.source_run_id else None,
        "source_version": f.source_version,
        "created": f.created.isoformat() if f.created else None,
        "created_by": f.created_by.username if f.created_by_id and f.created_by else None,
        "last_run": _last_run_json(last, f),
    }


@router.get(
    "/scripts/{int:script_id}/fixtures",
    response=FixtureList,
    summary="A script's test fixtures, each with the verdict of its last run",
    **READ,
)
def list_fixtures(request: HttpRequest, script_id: int) -> dict:
    script = _script(script_id)
    found = list(script.fixtures.select_related("created_by"))
    last = fixtures.last_runs(found)
    return {"results": [fixture_json(f, last.get(f.pk)) for f in found]}


@router.post(
    "/scripts/{int:script_id}/fixtures",
    response={201: FixtureOut},
    summary="Save a finished run of this script as a test fixture: its recording, "
    "its arguments, and what the script must do on it",
    **EDIT,
)
def create_fixture(request: HttpRequest, script_id: int, body: FixtureRequest) -> Status:
    script = _script(script_id)
    run = get_object_or_404(Run, pk=body.run_id)
    owner = fixtures.script_of(run)
    if owner is None or owner.pk != script.pk:
        raise ApiError(f"run {run.pk} is a run of {run.script_name!r}, not of {script.name!r}")
    given = body.model_fields_set
    try:
        with transaction.atomic():
            fixture = fixtures.save_from_run(
                run,
                body.name,
                request.user,
                expected_result=body.expected_result if "expected_result" in given else ...,
                expected_status=body.expected_status,
                check_output=body.check_output,
            )
    except IntegrityError:
        raise ApiError(f"{script.name} has a fixture {body.name.strip()!r} already", 409) from None
    except fixtures.FixtureError as exc:
        raise ApiError(str(exc), 409) from None
    audit.record(request.user, "fixture.create", script.name, fixture=fixture.name, run=str(run.pk))
    return Status(201, fixture_json(fixture))


@router.get(
    "/scripts/{int:script_id}/fixtures/{name}",
    response=FixtureOut,
    summary="One test fixture and the verdict of its last run",
    **READ,
)
def get_fixture(request: HttpRequest, script_id: int, name: str) -> dict:
    fixture = get_object_or_404(Fixture, script_id=script_id, name=name)
    return fixture_json(fixture, fixtures.last_runs([fixture]).get(fixture.pk))


@router.delete(
    "/scripts/{int:script_id}/fixtures/{name}",
    response={204: None},
    summary="Delete a test fixture (its runs stay)",
    **EDIT,
)
def delete_fixture(request: HttpRequest, script_id: int, name: str) -> Status:
    fixture = get_object_or_404(
        Fixture.objects.select_related("script"), script_id=script_id, name=name
    )
    fixture.delete()
    audit.record(request.user, "fixture.delete", fixture.script.name, fixture=name)
    return Status(204, None)


@router.post(
    "/scripts/{int:script_id}/fixture-runs",
    response={201: FixtureRuns},
    summary="Run a script's fixtures (all, or those named) against its latest or a "
    "chosen version: one replay run each; their verdicts come with the fixtures",
    **RUN,
)
def run_fixtures(request: HttpRequest, script_id: int, body: FixtureRunRequest) -> Status:
    script = _script(script_id)
    chosen = list(script.fixtures.select_related("script"))
    if body.names is not None:
        by_name = {f.name: f for f in chosen}
        missing = [n for n in body.names if n not in by_name]
        if missing:
            raise ApiError(f"{script.name} has no fixture {missing[0]!r}", 404)
        chosen = [by_name[n] for n in body.names]
    if not chosen:
        raise ApiError(f"{script.name} has no fixtures yet", 409)
    started_by = "api" if "Authorization" in request.headers else "user"
    runs = []
    try:
        for fixture in chosen:
            run = fixtures.start_fixture_run(fixture, request.user, started_by, body.version)
            runs.append({"fixture": fixture.name, "run_id": str(run.pk)})
    except RunQueueError as exc:
        raise ApiError(str(exc), 503) from None
    except fixtures.FixtureError as exc:
        raise ApiError(str(exc), 409) from None
    return Status(201, {"runs": runs})
