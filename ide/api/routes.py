"""The REST API's one route table: the URL patterns and the OpenAPI schema
are both generated from it, so they cannot disagree."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from ide.api import runs, scripts, settings

STR = {"type": "string"}
INT = {"type": "integer"}
OBJ = {"type": "object"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "/api/scripts/{script_id:int}"
    view: Callable
    summary: str
    tag: str
    query: tuple[tuple[str, str], ...] = ()  # (name, description)
    body: dict[str, Any] | None = None  # JSON schema of the request body
    returns: str = "object"
    status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


ROUTES: list[Route] = [
    Route("GET", "/api/scripts", scripts.list_scripts, "List scripts", "scripts",
          query=(("q", "name contains"), ("folder", "exact folder"),
                 ("deleted", "'true' lists deleted scripts"))),
    Route("POST", "/api/scripts", scripts.create_script, "Create a script (and its version 1)",
          "scripts", status=201, body={"type": "object", "required": ["name"], "properties": {
              "name": STR, "content": STR, "folder": STR, "tags": STR, "description": STR,
              "message": STR}}),
    Route("GET", "/api/scripts/{script_id:int}", scripts.get_script,
          "A script with its current content", "scripts"),
    Route("PATCH", "/api/scripts/{script_id:int}", scripts.update_script,
          "Rename, move to a folder, retag", "scripts", body={"type": "object", "properties": {
              "name": STR, "folder": STR, "tags": STR, "description": STR,
              "runtime": {"type": "string", "enum": ["lua51", "luajit"]},
              "limits": {"type": "object", "description": "wall_seconds, memory_bytes, "
                         "instructions, output_bytes ({} = defaults)"}}}),
    Route("DELETE", "/api/scripts/{script_id:int}", scripts.delete_script,
          "Delete a script (versions and runs are kept; restorable)", "scripts"),
    Route("POST", "/api/scripts/{script_id:int}/undelete", scripts.undelete_script,
          "Restore a deleted script", "scripts"),
    Route("GET", "/api/scripts/{script_id:int}/versions", scripts.list_versions,
          "The versions of a script, newest first", "versions"),
    Route("POST", "/api/scripts/{script_id:int}/versions", scripts.save_version,
          "Save new content as a new version", "versions", status=201,
          body={"type": "object", "required": ["content"],
                "properties": {"content": STR, "message": STR, "base_version": {
                    "type": "integer", "description": "refuse (409) if another version was "
                    "saved after this one"}}}),
    Route("GET", "/api/scripts/{script_id:int}/versions/{number:int}", scripts.get_version,
          "One version with its content", "versions"),
    Route("POST", "/api/scripts/{script_id:int}/versions/{number:int}/restore",
          scripts.restore_version, "Restore a version (makes a new version)", "versions",
          status=201),
    Route("POST", "/api/check", scripts.check, "Syntax check and lint of Lua source", "editor",
          body={"type": "object", "properties": {"source": STR}}),
    Route("GET", "/api/bindings", scripts.bindings, "The Lua API (binding registry)", "editor"),
    Route("GET", "/api/runs", runs.list_runs, "Run history, newest first", "runs",
          query=(("script", "script name"), ("status", "run status"),
                 ("started_by", "username, or schedule/event/api/cli"),
                 ("since", "ISO 8601 time"), ("until", "ISO 8601 time"),
                 ("before", "the next_before cursor of the previous page"))),
    Route("POST", "/api/runs", runs.create_run, "Run a saved script version", "runs", status=201,
          body={"type": "object", "required": ["script_id"], "properties": {
              "script_id": INT, "version": INT, "args": OBJ,
              "run_id": {"type": "string", "format": "uuid",
                         "description": "optional id chosen by the caller"}}}),
    Route("GET", "/api/runs/{run_id:uuid}", runs.get_run, "Status of a run", "runs"),
    Route("GET", "/api/runs/{run_id:uuid}/output", runs.run_output, "Output lines of a run",
          "runs", query=(("after", "only lines with a greater seq"), ("limit", "at most, 5000"))),
    Route("GET", "/api/runs/{run_id:uuid}/result", runs.run_result,
          "Result, error and metrics of a run", "runs"),
    Route("POST", "/api/runs/{run_id:uuid}/cancel", runs.cancel, "Cancel a run", "runs"),
    Route("GET", "/api/settings", settings.get_settings,
          "Platform settings: default run limits and runtime", "settings"),
    Route("PUT", "/api/settings", settings.put_settings,
          "Change platform settings (Admin only)", "settings",
          body={"type": "object", "properties": {
              "limits": {"type": "object", "description": "instructions, memory_bytes, "
                         "wall_seconds, output_bytes: a positive number, or null for the "
                         "built-in default; fields left out are unchanged"},
              "default_runtime": {"type": "string", "enum": ["lua51", "luajit"]}}}),
]

_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def extend(routes: list[Route]) -> None:
    """Add another module's routes (the devices endpoints) to the table."""
    ROUTES.extend(routes)


def _django_path(template: str) -> str:
    return _PARAM.sub(lambda m: f"<{m.group(2) or 'str'}:{m.group(1)}>", template).lstrip("/")


def openapi_path(template: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


def path_params(template: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2) or "str") for m in _PARAM.finditer(template)]


def _dispatcher(by_method: dict[str, Callable]) -> Callable:
    """One view per path, choosing the endpoint by method (async when they all are)."""

    def endpoint(request: HttpRequest) -> Callable | HttpResponse:
        view = by_method.get(request.method)
        if view is None:
            response = JsonResponse({"error": f"method {request.method} not allowed"}, status=405)
            response["Allow"] = ", ".join(sorted(by_method))
            return response
        return view

    asynchronous = [iscoroutinefunction(view) for view in by_method.values()]
    if any(asynchronous) and not all(asynchronous):
        raise ValueError(f"the endpoints of one path are all async or all sync: {by_method}")
    if all(asynchronous):

        @csrf_exempt
        async def async_dispatch(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            view = endpoint(request)
            return view if isinstance(view, HttpResponse) else await view(request, **kwargs)

        async_dispatch.by_method = by_method
        return async_dispatch

    @csrf_exempt
    def dispatch(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        view = endpoint(request)
        return view if isinstance(view, HttpResponse) else view(request, **kwargs)

    dispatch.by_method = by_method
    return dispatch


def urlpatterns() -> list[URLPattern]:
    grouped: dict[str, dict[str, Callable]] = {}
    for route in ROUTES:
        grouped.setdefault(route.path, {})[route.method] = route.view
    return [path(_django_path(p), _dispatcher(methods)) for p, methods in grouped.items()]
