"""REST endpoints for scripts and versions, and the editor's check."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Schema, Status

from ide.api.auth import Access, ApiError, needs
from ide.api.schemas import (
    Bindings,
    BreakpointsBody,
    CheckRequest,
    CheckResult,
    ScriptChange,
    ScriptCreate,
    ScriptDetail,
    ScriptList,
    ScriptOut,
    VersionDetail,
    VersionList,
    VersionOut,
    VersionSave,
)
from ide.api.serialize import script_json, version_json
from ide.checking import MAX_SOURCE, CheckUnavailable, check_in_checker
from ide.completion import api_entries
from ide.models import Breakpoints
from oktoscripts.lua.debugger import Breakpoint, DebugError
from oktoscripts.roles import Capability
from oktoscripts.scripts import editing
from oktoscripts.scripts.models import Script, ScriptVersion

router = Router(tags=["scripts"])
editor = Router(tags=["editor"])

READ, EDIT = needs(Capability.READ), needs(Capability.EDIT)
# JSON escapes at most 6 bytes per character ("\uXXXX"), plus the object around it.
MAX_CHECK_BODY = 6 * MAX_SOURCE + 1024
TOO_LONG = f"a script to check is at most {MAX_SOURCE:,} characters"


def _script(script_id: int) -> Script:
    return get_object_or_404(Script.objects.select_related("latest"), pk=script_id)


def _edited(change: callable, *args: object, **kwargs: object) -> object:
    try:
        return change(*args, **kwargs)
    except editing.ScriptError as exc:
        raise ApiError(str(exc)) from None


class ScriptFilters(Schema):
    q: str = Query("", description="name contains")
    folder: str | None = Query(None, description="exact folder")
    deleted: bool = Query(False, description="true lists deleted scripts")


@router.get("/scripts", response=ScriptList, summary="List scripts", **READ)
def list_scripts(request: HttpRequest, filters: Query[ScriptFilters]) -> dict:
    qs = Script.objects.select_related("latest").filter(deleted=filters.deleted)
    if filters.q:
        qs = qs.filter(name__icontains=filters.q)
    if filters.folder is not None:
        qs = qs.filter(folder=filters.folder)
    return {"scripts": [script_json(s) for s in qs[:1000]]}


@router.post(
    "/scripts", response={201: ScriptOut}, summary="Create a script (and its version 1)", **EDIT
)
def create_script(request: HttpRequest, body: ScriptCreate) -> Status:
    script = _edited(
        editing.create_script,
        request.user,
        body.name,
        body.content,
        folder=body.folder,
        tags=body.tags,
        description=body.description,
        message=body.message or "Created",
    )
    return Status(201, script_json(_script(script.pk)))


@router.get(
    "/scripts/{int:script_id}",
    response=ScriptDetail,
    summary="A script with its current content",
    **READ,
)
def get_script(request: HttpRequest, script_id: int) -> dict:
    script = _script(script_id)
    return {**script_json(script), "content": script.latest.content if script.latest else ""}


@router.patch(
    "/scripts/{int:script_id}",
    response=ScriptOut,
    summary="Rename, move to a folder, retag; runtime and limits",
    **EDIT,
)
def update_script(request: HttpRequest, script_id: int, body: ScriptChange) -> dict:
    _edited(
        editing.update_script,
        request.user,
        _script(script_id),
        name=body.name,
        folder=body.folder,
        tags=body.tags,
        description=body.description,
        runtime=body.runtime,
        limits=body.limits,
    )
    return script_json(_script(script_id))


@router.delete(
    "/scripts/{int:script_id}",
    response=ScriptOut,
    summary="Delete a script (versions and runs are kept; restorable)",
    **EDIT,
)
def delete_script(request: HttpRequest, script_id: int) -> dict:
    editing.delete_script(request.user, _script(script_id))
    return script_json(_script(script_id))


@router.post(
    "/scripts/{int:script_id}/undelete",
    response=ScriptOut,
    summary="Restore a deleted script",
    **EDIT,
)
def undelete_script(request: HttpRequest, script_id: int) -> dict:
    editing.undelete_script(request.user, _script(script_id))
    return script_json(_script(script_id))


@router.get(
    "/scripts/{int:script_id}/versions",
    response=VersionList,
    tags=["versions"],
    summary="The versions of a script, newest first",
    **READ,
)
def list_versions(request: HttpRequest, script_id: int) -> dict:
    script = _script(script_id)
    rows = ScriptVersion.objects.filter(script=script).select_related("author").defer("content")
    return {"versions": [version_json(v, content=False) for v in rows[:1000]]}


@router.post(
    "/scripts/{int:script_id}/versions",
    response={201: VersionOut},
    tags=["versions"],
    summary="Save new content as a new version",
    **EDIT,
)
def save_version(request: HttpRequest, script_id: int, body: VersionSave) -> Status:
    script = _script(script_id)
    base, latest = body.base_version, script.latest
    if base is not None and latest is not None and base != latest.number:
        # Someone saved since this editor loaded its version: do not overwrite silently.
        who = latest.author.username if latest.author else "someone"
        raise ApiError(f"{who} saved version {latest.number} after your version {base}", 409)
    declared = None if body.arguments is None else [a.model_dump() for a in body.arguments]
    version = _edited(
        editing.save_version, request.user, script, body.content, body.message, declared
    )
    return Status(201, version_json(version, content=False))


@router.get(
    "/scripts/{int:script_id}/versions/{int:number}",
    response=VersionDetail,
    tags=["versions"],
    summary="One version with its content",
    **READ,
)
def get_version(request: HttpRequest, script_id: int, number: int) -> dict:
    version = get_object_or_404(
        ScriptVersion.objects.select_related("author"), script_id=script_id, number=number
    )
    return version_json(version)


@router.post(
    "/scripts/{int:script_id}/versions/{int:number}/restore",
    response={201: VersionOut},
    tags=["versions"],
    summary="Restore a version (makes a new version)",
    **EDIT,
)
def restore_version(request: HttpRequest, script_id: int, number: int) -> Status:
    script = _script(script_id)
    get_object_or_404(ScriptVersion, script=script, number=number)
    version = _edited(editing.restore_version, request.user, script, number)
    return Status(201, version_json(version, content=False))


@editor.post(
    "/check",
    response=CheckResult,
    summary="Syntax check and lint of Lua source",
    auth=Access(Capability.READ, (MAX_CHECK_BODY, TOO_LONG)),
    openapi_extra=READ["openapi_extra"],
)
async def check(request: HttpRequest, body: CheckRequest) -> HttpResponse:
    """The editor's live check, in the checker process (ide/checking.py): a large
    or slow source never holds up other requests. The checker sends the answer
    already encoded (it has the shape of CheckResult)."""
    if len(body.source) > MAX_SOURCE:
        raise ApiError(f"{TOO_LONG} (this one has {len(body.source):,})", 413)
    try:
        answer = await check_in_checker(body.source)
    except CheckUnavailable as exc:
        raise ApiError(f"no check now: {exc}", 503) from None
    return HttpResponse(answer, content_type="application/json")


@editor.get("/bindings", response=Bindings, summary="The Lua API (binding registry)", **READ)
def bindings(request: HttpRequest) -> dict:
    return {"bindings": api_entries()}


RUN = needs(Capability.RUN)


@router.get(
    "/scripts/{int:script_id}/breakpoints",
    response=BreakpointsBody,
    tags=["debugger"],
    summary="Your debugger breakpoints in a script",
    **RUN,
)
def get_breakpoints(request: HttpRequest, script_id: int) -> dict:
    return {"breakpoints": Breakpoints.of(request.user, _script(script_id).pk)}


@router.put(
    "/scripts/{int:script_id}/breakpoints",
    response=BreakpointsBody,
    tags=["debugger"],
    summary="Replace your debugger breakpoints in a script",
    **RUN,
)
def put_breakpoints(request: HttpRequest, script_id: int, body: BreakpointsBody) -> dict:
    script = _script(script_id)
    if len(body.breakpoints) > Breakpoints.MAX:
        raise ApiError(f"at most {Breakpoints.MAX} breakpoints in a script")
    try:
        points = [vars(Breakpoint.parse(b)) for b in body.breakpoints]
    except DebugError as exc:
        raise ApiError(str(exc)) from None
    Breakpoints.objects.update_or_create(
        user=request.user, script=script, defaults={"points": points, "updated": timezone.now()}
    )
    return {"breakpoints": points}
