"""Authentication and role checks of REST endpoints.

A request carries either ``Authorization: Bearer <token>`` (an ApiToken; no
CSRF needed, there is no cookie) or the browser session, in which case writes
must carry the CSRF token like any form. Each endpoint names the capability it
needs (``needs(Capability.X)``); refusals are JSON: ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja.security.base import AuthBase

from ide.models import ApiToken
from oktoscripts.roles import Capability, can

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiError(Exception):
    """Raised inside an endpoint to answer ``{"error": message}`` with ``status``
    (and ``"fields"``: a message per wrong field, when given)."""

    def __init__(
        self, message: str, status: int = 400, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.fields = fields


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


def authenticated_user(request: HttpRequest) -> Any:
    """The user of a REST request (token, or session with CSRF on writes);
    ApiError 401/403 otherwise. Sets ``request.user``."""
    if "Authorization" in request.headers:
        user = _token_user(request)
        if user is None:
            raise ApiError("invalid or revoked API token", 401)
        request.user = user
    elif request.user.is_authenticated:
        if request.method not in SAFE_METHODS and _csrf_failure(request) is not None:
            raise ApiError("CSRF check failed: send the X-CSRFToken header", 403)
    else:
        raise ApiError("authentication required (session or 'Authorization: Bearer')", 401)
    return request.user


class Access(AuthBase):
    """The auth of one endpoint: an authenticated user holding ``capability``.
    In the OpenAPI document it is the bearer token scheme (the browser session
    works too)."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    def __init__(self, capability: Capability, max_body: tuple[int, str] | None = None) -> None:
        super().__init__()
        self.capability = capability
        self.max_body = max_body  # (bytes, the refusal): 413 before the body is read

    def __call__(self, request: HttpRequest) -> Any:
        user = authenticated_user(request)
        if not can(user, self.capability):
            raise ApiError(f"your role does not allow this (needs '{self.capability.value}')", 403)
        if self.max_body and int(request.META.get("CONTENT_LENGTH") or 0) > self.max_body[0]:
            raise ApiError(self.max_body[1], 413)
        return user


ACCESS = {capability: Access(capability) for capability in Capability}


def needs(capability: Capability) -> dict[str, Any]:
    """The options of an endpoint that needs ``capability``: its auth, and the
    capability named in the OpenAPI document (``x-required-capability``)."""
    return {
        "auth": ACCESS[capability],
        "openapi_extra": {"x-required-capability": capability.value},
    }
