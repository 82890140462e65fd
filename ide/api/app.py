"""The REST API on django-ninja: one NinjaAPI with a router per domain. It
generates the URL patterns and the OpenAPI document (real request and response
schemas: ide/api/schemas.py), and answers every error as JSON
(``{"error": "..."}``, with ``"fields"`` when fields are wrong), whatever the
status: 400, 401, 403, 404, 405, 409, 413, 429, 500, 503.

The document (/api/openapi.json) and the interactive docs (/api/docs) are for
signed-in users only: they map the whole API. The docs page is ninja's Swagger
UI from its own static files (no CDN, no inline script: ide/csp.py holds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, re_path, reverse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import Swagger
from ninja.operation import PathView
from ninja.utils import normalize_path, replace_path_param_notation

from ide.api import (
    arguments,
    automations,
    datamodel,
    devices,
    files,
    fixtures,
    runs,
    scripts,
    settings,
    twins,
)
from ide.api.auth import ApiError, authenticated_user
from oktoscripts.roles import Capability, can

log = logging.getLogger(__name__)


class _Docs(Swagger):
    """Swagger UI reading the document from where it is served (our URL name)."""

    def get_openapi_url(self, api: NinjaAPI, path_params: dict) -> str:
        return reverse("openapi")


api = NinjaAPI(
    title="oktoscripts REST API",
    version="1",
    description="Scripts, versions, runs, devices, settings, automations and stored files. "
    "Authenticate "
    "with 'Authorization: Bearer <token>' (create tokens on your account page) or "
    "the browser session (writes with the X-CSRFToken header).",
    urls_namespace="api",
    openapi_url=None,  # served by ``openapi_json`` below, behind sign-in
    docs=_Docs(settings={"validatorUrl": None}),  # no badge fetched from the internet
    docs_url=None,
)
for router in (
    scripts.router,
    scripts.editor,
    arguments.router,
    runs.router,
    settings.router,
    devices.router,
    datamodel.router,
    automations.router,
    twins.router,
    fixtures.router,
    files.router,
):
    api.add_router("/", router)


def error(message: str, status: int, fields: dict[str, str] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = fields
    return JsonResponse(body, status=status)


def _field_name(loc: tuple) -> str:
    """``("body", "body", "limits", "cpu")`` -> ``limits.cpu`` (where in the request)."""
    parts = [str(p) for p in loc]
    while parts and parts[0] in ("body", "query", "path", "payload", "filters"):
        parts.pop(0)
    return ".".join(parts)


def _field_message(problem: dict) -> str:
    message = str(problem.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _invalid(request: HttpRequest, exc: ValidationError) -> JsonResponse:
    fields: dict[str, str] = {}
    for problem in exc.errors:
        name = _field_name(tuple(problem.get("loc", ())))
        if problem.get("type") == "missing":
            fields.setdefault(name, "is required")
        else:
            fields.setdefault(name, _field_message(problem))
    message = "; ".join(
        f"'{name}' {text}"
        if name and text == "is required"
        else (f"'{name}': {text}" if name else text)
        for name, text in fields.items()
    )
    return error(message or "invalid request", 400, fields)


def _http_error(request: HttpRequest, exc: HttpError) -> JsonResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | UnicodeDecodeError):
        return error("the request body is not valid JSON", 400)
    return error(str(exc), exc.status_code)


def _crashed(request: HttpRequest, exc: Exception) -> JsonResponse:
    log.error("REST %s %s failed", request.method, request.path, exc_info=exc)
    return error("internal error (the web process's log says more)", 500)


api.add_exception_handler(ApiError, lambda r, e: error(str(e), e.status, e.fields))
api.add_exception_handler(ValidationError, _invalid)
api.add_exception_handler(AuthenticationError, lambda r, e: error("authentication required", 401))
api.add_exception_handler(HttpError, _http_error)
api.add_exception_handler(Http404, lambda r, e: error("not found", 404))
api.add_exception_handler(ObjectDoesNotExist, lambda r, e: error("not found", 404))
api.add_exception_handler(
    RequestDataTooBig, lambda r, e: error("the request body is too large", 413)
)
api.add_exception_handler(Exception, _crashed)


# -- the document and the docs page ----------------------------------------------------


def _schema_reader(request: HttpRequest) -> JsonResponse | None:
    """None when the request may read the API's map (its document, which paths
    exist), else the JSON refusal."""
    try:
        user = authenticated_user(request)
    except ApiError as exc:
        return error(str(exc), exc.status)
    if not can(user, Capability.READ):
        return error(f"your role does not allow this (needs '{Capability.READ.value}')", 403)
    return None


@csrf_exempt
def openapi_json(request: HttpRequest) -> HttpResponse:
    """Signed-in users only (session or token): the document maps the whole API."""
    refusal = _schema_reader(request)
    if refusal is not None:
        return refusal
    schema = api.get_openapi_schema(path_prefix="/api/")
    return JsonResponse(schema, json_dumps_params={"indent": 1})


openapi_json.capability = Capability.READ


def docs(request: HttpRequest) -> HttpResponse:
    """The interactive docs, for signed-in users (others go to the sign-in page)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not can(request.user, Capability.READ):
        return error(f"your role does not allow this (needs '{Capability.READ.value}')", 403)
    return api.docs.render_page(request, api)


docs.capability = Capability.READ


# -- URL patterns ------------------------------------------------------------------------


def _json_405(view: Callable) -> Callable:
    """Ninja answers a method a path lacks in plain text: answer it in JSON."""

    def reshaped(response: HttpResponse) -> HttpResponse:
        if response.status_code != 405:
            return response
        allowed = response["Allow"]
        answer = error(f"method not allowed (use {allowed})", 405)
        answer["Allow"] = allowed
        return answer

    if iscoroutinefunction(view):

        @wraps(view)
        async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return reshaped(await view(request, *args, **kwargs))

        return csrf_exempt(async_view)

    @wraps(view)
    def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return reshaped(view(request, *args, **kwargs))

    return csrf_exempt(sync_view)


def _endpoints() -> list[tuple[str, PathView]]:
    """Every path of the API (Django route syntax) with its operations, as ninja
    mounts them (ninja.router.BoundRouter.urls_paths)."""
    found = []
    for bound in api._get_bound_routers():
        prefix = replace_path_param_notation(bound.prefix)
        for route, path_view in bound.path_operations.items():
            joined = "/".join(p for p in (prefix, replace_path_param_notation(route)) if p)
            found.append((normalize_path(joined).lstrip("/"), path_view))
    return found


def _by_method(path_view: PathView) -> dict[str, Callable]:
    """The endpoint functions of one path, by method, each naming its capability
    (for the role tests, as page views do)."""
    found: dict[str, Callable] = {}
    for operation in path_view.operations:
        operation.view_func.capability = getattr(operation.auth_callbacks[0], "capability", None)
        for method in operation.methods:
            found[method] = operation.view_func
    return found


def _not_found(request: HttpRequest, rest: str) -> JsonResponse:
    """Any other path under /api/: for signed-in users a JSON 404 (visitors learn
    nothing but that they must sign in)."""
    return _schema_reader(request) or error(f"no such endpoint: /api/{rest}", 404)


_not_found.capability = Capability.READ


def urlpatterns() -> list[URLPattern]:
    """The API's URLs under /api/: its endpoints, the document, the docs page, and
    a JSON 404 for any other path under /api/."""
    patterns = [
        path("api/openapi.json", openapi_json, name="openapi"),
        path("api/docs", docs, name="api_docs"),
    ]
    for route, path_view in _endpoints():
        view = _json_405(path_view.get_view())
        view.by_method = _by_method(path_view)
        patterns.append(path("api/" + route, view))
    patterns.append(re_path(r"^api/(?P<rest>.*)$", csrf_exempt(_not_found)))
    return patterns
