"""The device functions of the Lua API (docs/lua-api.md "Devices").

delete_device and create_or_update_device_credential change the registry and
its secrets: they need the permission REST asks for the same change, held by
the run's principal (oktoscripts/runs/principal.py).

The synchronous ones call pymongo directly: bindings run in the Lua thread,
off the event loop. A database failure never raises into the script: it
gives the documented failure value and a line in the run's log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pymongo.errors import PyMongoError

from oktoscripts import permissions
from oktoscripts.devices import refresh
from oktoscripts.devices.credentials import CredentialError, CredentialStore
from oktoscripts.devices.events import new_device_source
from oktoscripts.devices.registry import DeviceRegistry
from oktoscripts.lua.binding import Param, binding

log = logging.getLogger(__name__)


def _non_empty(value: str) -> str | None:
    return None if value else "a non-empty string"


SERIAL = Param(
    "serial", "string", label="serial", doc="serial number or USP endpoint id", check=_non_empty
)


# Databases whose indexes this process already ensured, by (server, name).
# Registries themselves are not kept: a host may close its client after a run.
_indexed: set[tuple[str, str]] = set()


def _ensure_indexes_once(mongo: Any, store: DeviceRegistry | CredentialStore) -> None:
    key = (repr(mongo.client), f"{mongo.name}/{type(store).__name__}")
    if key not in _indexed:
        store.ensure_indexes()  # unique keys are what make concurrent upserts safe
        _indexed.add(key)


def registry_of(ctx: Any) -> DeviceRegistry:
    """The run's device registry: the host's, else one on the run's database,
    else the process's default."""
    services = ctx.services
    registry = getattr(services, "devices", None) if services else None
    if registry is not None:
        return registry
    mongo = getattr(services, "mongo", None) if services else None
    if mongo is None:
        from oktoscripts.devices.client import default_registry

        return default_registry()
    registry = DeviceRegistry(mongo)
    _ensure_indexes_once(mongo, registry)
    return registry


def credentials_of(ctx: Any) -> CredentialStore:
    """The credential store on the run's database (else the process's default)."""
    mongo = getattr(ctx.services, "mongo", None) if ctx.services else None
    if mongo is None:
        from oktoscripts.devices.client import default_credentials

        return default_credentials()
    store = CredentialStore(mongo)
    _ensure_indexes_once(mongo, store)
    return store


def _database_error(ctx: Any, name: str, exc: Exception) -> None:
    log.warning("%s: database error: %s", name, exc)
    ctx.output(f"{name}: database error: {exc}", stream="log", level="error")


@binding(
    "get_device",
    params=[SERIAL],
    returns="device table | false",
    doc="The device with this serial (sn, model, vendor, version, product_class, alias, "
    "status 0/1/2, cwmp, usp, data_model, oui, last_seen, ip, mtps, params, "
    "twin: true for a device twin), "
    "or false if unknown.",
    category="devices",
)
def get_device(ctx: Any, serial: str) -> dict | bool:
    try:
        device = registry_of(ctx).get_lua(serial)
    except PyMongoError as exc:
        _database_error(ctx, "get_device", exc)
        return False
    return False if device is None else device


@binding(
    "get_all_devices",
    params=[],
    returns="array of device tables",
    doc="Every device the platform knows, by serial (an empty table if none).",
    category="devices",
)
def get_all_devices(ctx: Any) -> list[dict]:
    try:
        return registry_of(ctx).all_lua()
    except PyMongoError as exc:
        _database_error(ctx, "get_all_devices", exc)
        return []


@binding(
    "delete_device",
    params=[SERIAL],
    returns="boolean",
    doc="Remove a device from the database: true if it was removed, false otherwise "
    "(needs the permission devices.delete_device).",
    category="devices",
    permission=permissions.DELETE_DEVICE,
)
def delete_device(ctx: Any, serial: str) -> bool:
    try:
        return registry_of(ctx).delete(serial)
    except PyMongoError as exc:
        _database_error(ctx, "delete_device", exc)
        return False


def _serials(value: Any) -> str | None:
    """A serial or a sequence of serials (the credential's devices)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return "a serial or a list of serials"
    return None


@binding(
    "create_or_update_device_credential",
    params=[
        Param("username", "string"),
        Param("password", "string"),
        Param(
            "devices",
            "any",
            optional=True,
            check=_serials,
            doc="serial (or list of serials) the credential also speaks for; by default "
            "only the device its username names",
        ),
    ],
    returns="boolean",
    doc="Create or replace the credential a device authenticates with (never stored in "
    "clear); it speaks only for the device its username names (serial, Endpoint ID, "
    "OUI-SerialNumber) and the devices given; false for empty strings, a dot in either, "
    "or a database error (needs the permission scripts.administer: Admins).",
    category="devices",
    permission=permissions.ADMINISTER,
)
def create_or_update_device_credential(
    ctx: Any, username: str, password: str, devices: Any = None
) -> bool:
    if isinstance(devices, str):
        devices = [devices]
    try:
        credentials_of(ctx).create_or_update(username, password, devices=devices)
    except CredentialError as exc:
        ctx.output(f"create_or_update_device_credential: {exc}", stream="log", level="warning")
        return False
    except PyMongoError as exc:
        _database_error(ctx, "create_or_update_device_credential", exc)
        return False
    return True


def _callback_last(args: tuple) -> tuple:
    # listen_to_new_device("*", "*", callback) as in published examples.
    if len(args) >= 3:
        return (args[2],)
    return args


@binding(
    "listen_to_new_device",
    params=[Param("callback", "function", doc="callback(device_table)")],
    returns="nil",
    doc="Call callback(device) once for every device seen for the first time from now on, "
    'over any protocol (also accepts ("*", "*", callback)).',
    category="devices",
    normalize=_callback_last,
)
async def listen_to_new_device(ctx: Any, callback: Any) -> None:
    nc = getattr(ctx.services, "nats", None) if ctx.services else None
    if nc is None:
        raise RuntimeError("this run has no connection to the message bus")
    source = await new_device_source(nc, durable=ctx.listener_name())
    ctx.add_listener(source, callback, parallel=1, name="new device")


@binding(
    "refresh_device_parameters",
    params=[SERIAL],
    returns="boolean",
    doc="Read PPPoE username, WAN IP, WAN MAC and DeviceInfo from the device over its "
    "protocol and store them on its record (params); true if that worked.",
    category="devices",
)
async def refresh_device_parameters(ctx: Any, serial: str) -> bool:
    registry = registry_of(ctx)
    started = time.monotonic()
    ok = False
    try:
        device = await asyncio.to_thread(registry.get, serial)
        reader = refresh.reader_for(device) if device else None
        if reader is not None:
            params = await reader(ctx, device)
            if params is not None:
                ok = await asyncio.to_thread(registry.set_params, serial, params)
    except PyMongoError as exc:
        _database_error(ctx, "refresh_device_parameters", exc)
    finally:
        ctx.record_call("refresh_device_parameters", serial, time.monotonic() - started, ok)
    return ok
