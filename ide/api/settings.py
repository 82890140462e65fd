"""REST endpoints of the platform settings: anyone may read them, Admins change them."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from ide.api.auth import ApiError, needs
from ide.api.schemas import SettingsChange, SettingsChanged, SettingsOut
from oktoscripts.roles import Capability
from oktoscripts.scripts import platform_settings

router = Router(tags=["settings"])


@router.get(
    "/settings",
    response=SettingsOut,
    summary="Platform settings: default run limits and runtime",
    **needs(Capability.READ),
)
def get_settings(request: HttpRequest) -> dict:
    return platform_settings.as_json()


@router.put(
    "/settings",
    response=SettingsChanged,
    summary="Change platform settings (Admin only)",
    **needs(Capability.ADMIN),
)
def put_settings(request: HttpRequest, body: SettingsChange) -> dict:
    try:
        changes = platform_settings.update(request.user, body.limits, body.default_runtime)
    except platform_settings.SettingsError as exc:
        raise ApiError(str(exc), fields=exc.errors) from None
    return {**platform_settings.as_json(), "changed": sorted(changes)}
