"""REST endpoints of the platform settings: anyone may read them, Admins change them."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from ide.api.auth import ApiError, api_endpoint, json_body
from oktoscripts.roles import Capability
from oktoscripts.scripts import platform_settings

WRITABLE = {"limits", "default_runtime"}


@api_endpoint(Capability.READ)
def get_settings(request: HttpRequest) -> JsonResponse:
    return JsonResponse(platform_settings.as_json())


@api_endpoint(Capability.ADMIN)
def put_settings(request: HttpRequest) -> JsonResponse:
    body = json_body(request)
    unknown = sorted(set(body) - WRITABLE)
    if unknown:
        raise ApiError(f"unknown setting {unknown[0]!r} (use {' or '.join(sorted(WRITABLE))})")
    try:
        changes = platform_settings.update(request.user, body.get("limits"),
                                           body.get("default_runtime"))
    except platform_settings.SettingsError as exc:
        return JsonResponse({"error": str(exc), "fields": exc.errors}, status=400)
    return JsonResponse({**platform_settings.as_json(), "changed": sorted(changes)})
