"""REST endpoints for devices, over the device registry on MongoDB.

Reading needs the ``read`` capability (every role). Deleting a device needs
the Django permission ``devices.delete_device`` and renaming it (alias)
``devices.change_device_alias`` (oktoscripts/devices/models.py); superusers
hold both, and the role table gives them to roles. Both are audited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field
from pymongo.errors import PyMongoError

from ide import converters  # noqa: F401 - registers the "serial" path converter
from ide.api.auth import ApiError, needs
from ide.api.schemas import AliasChange, Device, DeviceCounts, DeviceDeleted, DeviceList
from oktoscripts import permissions
from oktoscripts.devices.documents import api_json
from oktoscripts.devices.registry import MAX_PAGE, DeviceFilter, DeviceRegistry
from oktoscripts.roles import Capability
from oktoscripts.scripts import audit

router = Router(tags=["devices"])
READ = needs(Capability.READ)
DELETE_PERMISSION = permissions.DELETE_DEVICE  # delete_device in Lua asks the same
ALIAS_PERMISSION = permissions.CHANGE_DEVICE_ALIAS


class DeviceQuery(Schema):
    status: int | None = Field(None, ge=0, le=2, description="0 offline, 1 associating, 2 online")
    vendor: str | None = Field(None, description="exact vendor")
    product_class: str | None = Field(None, description="exact product class")
    protocol: Literal["cwmp", "usp"] | None = None
    q: str | None = Field(None, description="serial or alias contains (case-insensitive)")
    twins: Literal["exclude", "include", "only"] = Field(
        "include", description="device twins: listed (include, marked twin), left out, or alone"
    )
    page: int = Field(1, ge=1, le=1_000_000, description="1-based page number")
    page_size: int = Field(100, ge=1, le=MAX_PAGE, description="devices per page")
    sort: str = Field(
        "serial",
        description="serial, last_seen, first_seen, status, vendor or "
        "product_class; '-' first for descending",
    )


def _registry() -> DeviceRegistry:
    from oktoscripts.devices.client import default_registry

    return _database(default_registry)


def _database(call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)`` on the device database; 503 when it cannot be reached."""
    try:
        return call(*args)
    except PyMongoError as exc:
        raise ApiError(f"the device database cannot be reached: {exc}", 503) from None


def _device_or_404(registry: DeviceRegistry, serial: str) -> dict:
    doc = _database(registry.get, serial)
    if doc is None:
        raise ApiError(f"no device {serial!r}", 404)
    return doc


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise ApiError(f"your role does not allow this (needs '{permission}')", 403)


@router.get("/devices", response=DeviceList, summary="List devices with filters and paging", **READ)
def list_devices(request: HttpRequest, query: Query[DeviceQuery]) -> dict:
    filters = DeviceFilter(
        status=query.status,
        vendor=query.vendor or None,
        product_class=query.product_class or None,
        protocol=query.protocol,
        text=query.q or None,
        twins={"exclude": False, "include": None, "only": True}[query.twins],
    )
    registry = _registry()
    offset = (query.page - 1) * query.page_size
    try:
        docs, total = _database(
            lambda: registry.list(filters, offset=offset, limit=query.page_size, sort=query.sort)
        )
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    return {
        "count": total,
        "page": query.page,
        "page_size": query.page_size,
        "results": [api_json(doc) for doc in docs],
    }


@router.get(
    "/device-counts",
    response=DeviceCounts,
    summary="How many devices by status, vendor and product class",
    **READ,
)
def device_counts(request: HttpRequest) -> dict:
    return _database(_registry().counts)


@router.get(
    "/devices/{serial:serial}",
    response=Device,
    summary="A device's record (never a password)",
    **READ,
)
def get_device(request: HttpRequest, serial: str) -> dict:
    return api_json(_device_or_404(_registry(), serial))


@router.patch(
    "/devices/{serial:serial}",
    response=Device,
    summary="Set a device's alias (needs devices.change_device_alias)",
    **READ,
)
def update_device(request: HttpRequest, serial: str, body: AliasChange) -> dict:
    _require(request, ALIAS_PERMISSION)
    registry = _registry()
    if not _database(registry.set_alias, serial, body.alias):
        raise ApiError(f"no device {serial!r}", 404)
    audit.record(request.user, "device.alias", serial, alias=body.alias.strip())
    return api_json(_device_or_404(registry, serial))


@router.delete(
    "/devices/{serial:serial}",
    response=DeviceDeleted,
    summary="Remove a device from the database (needs devices.delete_device)",
    **READ,
)
def delete_device(request: HttpRequest, serial: str) -> dict:
    _require(request, DELETE_PERMISSION)
    doc = _database(_registry().get, serial)
    if doc is not None and doc.get("twin"):  # a twin's device goes with the twin
        from oktoscripts.devices.client import mongo_database
        from oktoscripts.twins import store

        with contextlib.suppress(store.TwinNotFound):
            _database(store.delete, mongo_database(), serial)
    if not _database(_registry().delete, serial) and doc is None:
        raise ApiError(f"no device {serial!r}", 404)
    audit.record(request.user, "device.delete", serial)
    return {"deleted": True, "serial": serial}
