"""Authentication and role checks of REST endpoints.

A request carries either ``Authorization: Bearer <token>`` (an ApiToken; no
CSRF needed, there is no cookie) or the browser session, in which case writes
must carry the CSRF token like any form. Errors are JSON: ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from ide.models import ApiToken
from oktoscripts.roles import Capability, can

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiError(Exception):
    """Raised inside an endpoint to answer ``{"error": message}`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _token_user(request: HttpRequest) -> Any | None:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() not in ("bearer", "token") or not raw.strip():
        return None
    return ApiToken.authenticate(raw.strip())


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object body (empty for no body); 400 on anything else."""
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    return body


def _refusal(request: HttpRequest, capability: Capability) -> HttpResponse | None:
    """Authenticate the request (token or session with CSRF) and check the
    capability: the error response, or None (``request.user`` is set)."""
    if "Authorization" in request.headers:
        user = _token_user(request)
        if user is None:
            return error("invalid or revoked API token", 401)
        request.user = user
    elif request.user.is_authenticated:
        if request.method not in SAFE_METHODS:
            failure = _csrf_failure(request)
            if failure is not None:
                return error("CSRF check failed: send the X-CSRFToken header", 403)
    else:
        return error("authentication required (session or 'Authorization: Bearer')", 401)
    if not can(request.user, capability):
        return error(f"your role does not allow this (needs '{capability.value}')", 403)
    return None


def api_endpoint(capability: Capability) -> Callable:
    """Token or session authentication, the capability check, JSON errors.
    An ``async def`` view stays async (its checks run in a thread)."""

    def decorate(view: Callable) -> Callable:
        if iscoroutinefunction(view):

            @csrf_exempt
            @wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any
                                    ) -> HttpResponse:
                refusal = await sync_to_async(_refusal)(request, capability)
                if refusal is not None:
                    return refusal
                try:
                    return await view(request, *args, **kwargs)
                except ApiError as exc:
                    return error(str(exc), exc.status)

            async_wrapper.capability = capability
            return async_wrapper

        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refusal = _refusal(request, capability)
            if refusal is not None:
                return refusal
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error(str(exc), exc.status)
            except ObjectDoesNotExist:
                return error("not found", 404)

        wrapper.capability = capability
        return wrapper

    return decorate
