"""REST endpoints for scripts and versions, and the editor's check."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from ide.api.auth import ApiError, api_endpoint, json_body
from ide.api.serialize import script_json, version_json
from ide.checking import MAX_SOURCE, CheckUnavailable, check_in_checker
from ide.completion import api_entries
from oktoscripts.roles import Capability
from oktoscripts.scripts import editing
from oktoscripts.scripts.models import Script, ScriptVersion

# JSON escapes at most 6 bytes per character ("\uXXXX"), plus the object around it.
MAX_CHECK_BODY = 6 * MAX_SOURCE + 1024


def _script(script_id: int) -> Script:
    return get_object_or_404(Script.objects.select_related("latest"), pk=script_id)


def _str(body: dict, key: str, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ApiError(f"'{key}' must be a string")
    return value


@api_endpoint(Capability.READ)
def list_scripts(request: HttpRequest) -> JsonResponse:
    qs = Script.objects.select_related("latest").filter(
        deleted=request.GET.get("deleted") == "true")
    if q := request.GET.get("q"):
        qs = qs.filter(name__icontains=q)
    if (folder := request.GET.get("folder")) is not None:
        qs = qs.filter(folder=folder)
    return JsonResponse({"scripts": [script_json(s) for s in qs[:1000]]})


@api_endpoint(Capability.EDIT)
def create_script(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    try:
        script = editing.create_script(
            request.user, _str(body, "name", ""), _str(body, "content", ""),
            folder=_str(body, "folder", ""), tags=_str(body, "tags", ""),
            description=_str(body, "description", ""),
            message=_str(body, "message", "") or "Created",
        )
    except editing.ScriptError as exc:
        raise ApiError(str(exc)) from None
    return JsonResponse(script_json(_script(script.pk)), status=201)


@api_endpoint(Capability.READ)
def get_script(request: HttpRequest, script_id: int) -> JsonResponse:
    script = _script(script_id)
    data = script_json(script)
    data["content"] = script.latest.content if script.latest else ""
    return JsonResponse(data)


@api_endpoint(Capability.EDIT)
def update_script(request: HttpRequest, script_id: int) -> JsonResponse:
    body = json_body(request)
    try:
        editing.update_script(
            request.user, _script(script_id), name=_str(body, "name"),
            folder=_str(body, "folder"), tags=_str(body, "tags"),
            description=_str(body, "description"), runtime=_str(body, "runtime"),
            limits=body.get("limits"),
        )
    except editing.ScriptError as exc:
        raise ApiError(str(exc)) from None
    return JsonResponse(script_json(_script(script_id)))


@api_endpoint(Capability.EDIT)
def delete_script(request: HttpRequest, script_id: int) -> JsonResponse:
    editing.delete_script(request.user, _script(script_id))
    return JsonResponse(script_json(_script(script_id)))


@api_endpoint(Capability.EDIT)
def undelete_script(request: HttpRequest, script_id: int) -> JsonResponse:
    editing.undelete_script(request.user, _script(script_id))
    return JsonResponse(script_json(_script(script_id)))


@api_endpoint(Capability.READ)
def list_versions(request: HttpRequest, script_id: int) -> JsonResponse:
    script = _script(script_id)
    rows = ScriptVersion.objects.filter(script=script).select_related("author").defer("content")
    return JsonResponse({"versions": [version_json(v, content=False) for v in rows[:1000]]})


@api_endpoint(Capability.EDIT)
def save_version(request: HttpRequest, script_id: int) -> JsonResponse:
    body = json_body(request)
    content = _str(body, "content")
    if content is None:
        raise ApiError("'content' is required")
    script = _script(script_id)
    base = body.get("base_version")
    if base is not None and script.latest is not None and base != script.latest.number:
        # Someone saved since this editor loaded its version: do not overwrite silently.
        who = script.latest.author.username if script.latest.author else "someone"
        raise ApiError(f"{who} saved version {script.latest.number} after your version {base}",
                       409)
    try:
        version = editing.save_version(request.user, script, content,
                                       _str(body, "message", "") or "")
    except editing.ScriptError as exc:
        raise ApiError(str(exc)) from None
    return JsonResponse(version_json(version, content=False), status=201)


@api_endpoint(Capability.READ)
def get_version(request: HttpRequest, script_id: int, number: int) -> JsonResponse:
    version = get_object_or_404(ScriptVersion.objects.select_related("author"),
                                script_id=script_id, number=number)
    return JsonResponse(version_json(version))


@api_endpoint(Capability.EDIT)
def restore_version(request: HttpRequest, script_id: int, number: int) -> JsonResponse:
    try:
        version = editing.restore_version(request.user, _script(script_id), number)
    except editing.ScriptError as exc:
        raise ApiError(str(exc)) from None
    return JsonResponse(version_json(version, content=False), status=201)


@api_endpoint(Capability.READ)
async def check(request: HttpRequest) -> JsonResponse:
    """The editor's live check, in the checker process (ide/checking.py): a large
    or slow source never holds up other requests."""
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_CHECK_BODY:
        raise ApiError(f"a script to check is at most {MAX_SOURCE:,} characters", 413)
    source = _str(json_body(request), "source", "")
    if len(source) > MAX_SOURCE:
        raise ApiError(f"a script to check is at most {MAX_SOURCE:,} characters "
                       f"(this one has {len(source):,})", 413)
    try:
        problems = await check_in_checker(source)
    except CheckUnavailable as exc:
        raise ApiError(f"no check now: {exc}", 503) from None
    return JsonResponse({"problems": problems})


@api_endpoint(Capability.READ)
def bindings(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"bindings": api_entries()})
