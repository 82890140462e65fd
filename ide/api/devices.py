"""REST endpoints for devices, over the device registry on MongoDB.

Reading needs the ``read`` capability (every role). Deleting a device needs
the Django permission ``devices.delete_device`` and renaming it (alias)
``devices.change_device_alias`` (oktoscripts/devices/models.py); superusers
hold both, and the role table gives them to roles. Both are audited.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from pymongo.errors import PyMongoError

from ide import audit
from ide.api import routes
from ide.api.auth import ApiError, api_endpoint, json_body
from ide.roles import Capability
from oktoscripts import permissions
from oktoscripts.devices.documents import api_json
from oktoscripts.devices.registry import MAX_PAGE, DeviceFilter, DeviceRegistry

DELETE_PERMISSION = permissions.DELETE_DEVICE  # delete_device in Lua asks the same
ALIAS_PERMISSION = permissions.CHANGE_DEVICE_ALIAS
MAX_ALIAS = 200


def _registry() -> DeviceRegistry:
    from oktoscripts.devices.client import default_registry

    try:
        return default_registry()
    except PyMongoError as exc:
        raise ApiError(f"the device database cannot be reached: {exc}", 503) from None


def _int(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise ApiError(f"'{name}' must be between {low} and {high}")
    return value


def _filters(request: HttpRequest) -> DeviceFilter:
    g = request.GET
    status = g.get("status", "")
    if status and status not in ("0", "1", "2"):
        raise ApiError("'status' must be 0 (offline), 1 (associating) or 2 (online)")
    protocol = g.get("protocol", "")
    if protocol and protocol not in ("cwmp", "usp"):
        raise ApiError("'protocol' must be cwmp or usp")
    return DeviceFilter(
        status=int(status) if status else None,
        vendor=g.get("vendor") or None,
        product_class=g.get("product_class") or None,
        protocol=protocol or None,
        text=g.get("q") or None,
    )


@api_endpoint(Capability.READ)
def list_devices(request: HttpRequest) -> JsonResponse:
    filters = _filters(request)
    page = _int(request, "page", 1, 1, 1_000_000)
    page_size = _int(request, "page_size", 100, 1, MAX_PAGE)
    sort = request.GET.get("sort", "serial")
    registry = _registry()
    try:
        docs, total = registry.list(
            filters, offset=(page - 1) * page_size, limit=page_size, sort=sort
        )
    except ValueError as exc:
        raise ApiError(str(exc)) from None
    except PyMongoError as exc:
        raise ApiError(f"the device database cannot be reached: {exc}", 503) from None
    return JsonResponse(
        {
            "count": total,
            "page": page,
            "page_size": page_size,
            "results": [api_json(doc) for doc in docs],
        }
    )


@api_endpoint(Capability.READ)
def device_counts(request: HttpRequest) -> JsonResponse:
    try:
        counts = _registry().counts()
    except PyMongoError as exc:
        raise ApiError(f"the device database cannot be reached: {exc}", 503) from None
    return JsonResponse(counts)


def _device_or_404(registry: DeviceRegistry, serial: str) -> dict:
    try:
        doc = registry.get(serial)
    except PyMongoError as exc:
        raise ApiError(f"the device database cannot be reached: {exc}", 503) from None
    if doc is None:
        raise ApiError(f"no device {serial!r}", 404)
    return doc


@api_endpoint(Capability.READ)
def get_device(request: HttpRequest, serial: str) -> JsonResponse:
    return JsonResponse(api_json(_device_or_404(_registry(), serial)))


@api_endpoint(Capability.READ)
def delete_device(request: HttpRequest, serial: str) -> JsonResponse:
    if not request.user.has_perm(DELETE_PERMISSION):
        raise ApiError(f"your role does not allow this (needs '{DELETE_PERMISSION}')", 403)
    try:
        deleted = _registry().delete(serial)
    except PyMongoError as exc:
        raise ApiError(f"the device database cannot be reached: {exc}", 503) from None
    if not deleted:
        raise ApiError(f"no device {serial!r}", 404)
    audit.record(request.user, "device.delete", serial)
    return JsonResponse({"deleted": True, "serial": serial})


@api_endpoint(Capability.READ)
def update_device(request: HttpRequest, serial: str) -> JsonResponse:
    if not request.user.has_perm(ALIAS_PERMISSION):
        raise ApiError(f"your role does not allow this (needs '{ALIAS_PERMISSION}')", 403)
    body = json_body(request)
    unknown = set(body) - {"alias"}
    if unknown or "alias" not in body:
        raise ApiError('the body must be {"alias": "..."} (only the alias can be changed)')
    alias = body["alias"]
    if not isinstance(alias, str) or len(alias) > MAX_ALIAS:
        raise ApiError(f"'alias' must be a string of at most {MAX_ALIAS} characters")
    registry = _registry()
    try:
        found = registry.set_alias(serial, alias)
    except PyMongoError as exc:
        raise ApiError(f"the device database cannot be reached: {exc}", 503) from None
    if not found:
        raise ApiError(f"no device {serial!r}", 404)
    audit.record(request.user, "device.alias", serial, alias=alias.strip())
    return JsonResponse(api_json(_device_or_404(registry, serial)))


FILTER_QUERY = (
    ("status", "0 offline, 1 associating, 2 online"),
    ("vendor", "exact vendor"),
    ("product_class", "exact product class"),
    ("protocol", "cwmp or usp"),
    ("q", "serial or alias contains (case-insensitive)"),
    ("page", "1-based page number"),
    ("page_size", f"devices per page, at most {MAX_PAGE}"),
    ("sort", "serial, last_seen, first_seen, status, vendor or product_class; '-' for descending"),
)

ROUTES = [
    routes.Route(
        "GET",
        "/api/devices",
        list_devices,
        "List devices with filters and paging",
        "devices",
        query=FILTER_QUERY,
    ),
    routes.Route(
        "GET",
        "/api/device-counts",
        device_counts,
        "How many devices by status, vendor and product class",
        "devices",
    ),
    routes.Route(
        "GET",
        "/api/devices/{serial:serial}",
        get_device,
        "A device's record (never a password)",
        "devices",
    ),
    routes.Route(
        "PATCH",
        "/api/devices/{serial:serial}",
        update_device,
        "Set a device's alias (needs devices.change_device_alias)",
        "devices",
        body={"type": "object", "required": ["alias"], "properties": {"alias": routes.STR}},
    ),
    routes.Route(
        "DELETE",
        "/api/devices/{serial:serial}",
        delete_device,
        "Remove a device from the database (needs devices.delete_device)",
        "devices",
    ),
]

if not any(r.view is list_devices for r in routes.ROUTES):  # imported once per process
    routes.extend(ROUTES)
