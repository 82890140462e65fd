"""The device document in MongoDB and the shapes made from it.

One document per device in the ``devices`` collection; its ``_id`` is the
serial (unique by construction, and the cheapest lookup), also kept as
``serial`` for people reading the collection. Fields every protocol shares
are top level; what only one protocol needs lives under ``cwmp`` or ``usp``,
so that each protocol writes its own dotted fields and never overwrites the
other's::

    serial, alias, vendor, model, version, hw_version, product_class, oui,
    data_model, ip          strings (missing or "" = unknown; alias only once set)
    status          0 offline, 1 associating, 2 online (the highest of the protocols)
    offline_at      when the sweeper takes the device offline (None: never by itself)
    first_seen, last_seen                              datetimes, UTC
    params          [{"path": ..., "value": ...}] read by refresh_device_parameters
    params_at       when they were read
    announce_pending  true from the insert until the new-device event is on NATS
    twin            {of: original's serial, snapshot: version}: a device twin (oktoscripts/twins)
    cwmp: {serial_number, oui, product_class (the DeviceId), periodic_inform_interval,
           last_inform, last_events, connection_request: {url, username,
           password (sealed)}, state, offline_at, last_seen}
    usp:  {endpoint_id, mtps: {<name>: {state, address, since}}, state,
           offline_at, owner, last_seen}

``params`` is a list rather than a sub-document because parameter paths hold
dots, which MongoDB reads as nested field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

OFFLINE = 0
ASSOCIATING = 1
ONLINE = 2
STATUSES = (OFFLINE, ASSOCIATING, ONLINE)
STATUS_NAMES = {OFFLINE: "offline", ASSOCIATING: "associating", ONLINE: "online"}

PROTOCOLS = ("cwmp", "usp")

# Top-level string fields that any protocol may report; "" when unknown.
SHARED_FIELDS = (
    "vendor",
    "model",
    "version",
    "hw_version",
    "product_class",
    "oui",
    "data_model",
    "ip",
)

# Fields never returned outside the registry (sealed secrets, bookkeeping).
PRIVATE_FIELDS = ("_id", "announce_pending")


def utc(value: datetime | None) -> datetime | None:
    """A datetime as aware UTC (pymongo returns naive UTC unless tz_aware)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str:
    """ISO-8601 UTC with a Z, to the millisecond (BSON dates hold milliseconds); "" if None.
    A naive datetime is taken as UTC (what pymongo gives without tz_aware)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # isoformat is C code: a listing formats one date per device.
    return value.isoformat(timespec="milliseconds") + "Z"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def params_dict(doc: dict) -> dict[str, str]:
    """The refreshed parameters as {full path: value}."""
    return {
        item["path"]: _text(item.get("value"))
        for item in doc.get("params") or []
        if isinstance(item, dict) and isinstance(item.get("path"), str)
    }


def lua_table(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The device table of the Lua API (docs/lua-api.md "Devices"), beyond fields included."""
    # Written out flat: get_all_devices builds one per device (10,000 in a
    # listing), so every call saved here counts.
    get = doc.get
    status = get("status")
    usp = get("usp")
    is_usp = isinstance(usp, dict)
    mtps = usp.get("mtps") if is_usp else None
    params = get("params")
    return {
        "sn": doc["serial"],
        "model": _text(get("model")),
        "vendor": _text(get("vendor")),
        "version": _text(get("version")),
        "product_class": _text(get("product_class")),
        "alias": _text(get("alias")),
        "status": status if status in STATUSES else OFFLINE,
        "cwmp": isinstance(get("cwmp"), dict),
        "usp": is_usp,
        "data_model": _text(get("data_model")),
        "oui": _text(get("oui")),
        "last_seen": iso(get("last_seen")),
        "ip": _text(get("ip")),
        "mtps": sorted(mtps) if mtps else [],
        "params": params_dict(doc) if params else {},
        # A device twin (oktoscripts/twins): simulated from a snapshot of "twin_of".
        "twin": isinstance(get("twin"), dict),
    }


def api_json(doc: dict) -> dict[str, Any]:
    """A device for the REST API: the Lua table plus the protocol details a
    person looks at (never a password, sealed or not)."""
    out = lua_table(doc)
    out["status_name"] = STATUS_NAMES.get(out["status"], "offline")
    out["first_seen"] = iso(doc.get("first_seen"))
    out["hw_version"] = _text(doc.get("hw_version"))
    out["offline_at"] = iso(doc.get("offline_at"))
    twin = doc.get("twin")
    out["twin_of"] = _text(twin.get("of")) if isinstance(twin, dict) else ""
    cwmp = doc.get("cwmp")
    if isinstance(cwmp, dict):
        cr = cwmp.get("connection_request") or {}
        out["cwmp_details"] = {
            "serial_number": _text(cwmp.get("serial_number")),
            "oui": _text(cwmp.get("oui")),
            "product_class": _text(cwmp.get("product_class")),
            "software_version": _text(doc.get("version")),
            "hardware_version": _text(doc.get("hw_version")),
            "periodic_inform_interval": cwmp.get("periodic_inform_interval"),
            "last_inform": iso(cwmp.get("last_inform")),
            "last_events": list(cwmp.get("last_events") or []),
            "connection_request_url": _text(cr.get("url")),
            "connection_request_username": _text(cr.get("username")),
        }
        onboarding = cwmp.get("onboarding")
        if isinstance(onboarding, dict):  # admitted with a factory credential
            out["cwmp_details"]["onboarding"] = {
                "state": _text(onboarding.get("state")),
                "at": iso(onboarding.get("at")),
                "username": _text(onboarding.get("username")),
                "fault": _text(onboarding.get("fault")),
                "factory_refusals": int(onboarding.get("factory_refusals") or 0),
                "factory_refused_at": iso(onboarding.get("factory_refused_at")),
            }
    usp = doc.get("usp")
    if isinstance(usp, dict):
        out["usp_details"] = {
            "endpoint_id": _text(usp.get("endpoint_id")),
            "mtps": {
                name: {
                    "state": _text(mtp.get("state")),
                    "address": mtp.get("address") or {},
                    "since": iso(mtp.get("since")),
                }
                for name, mtp in (usp.get("mtps") or {}).items()
                if isinstance(mtp, dict)
            },
        }
    return out
