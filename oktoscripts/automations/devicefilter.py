"""The device filter of bulk runs and event triggers: a JSON object stored on
the automation, turned into the device registry's DeviceFilter.

``{"status": 2, "vendor": "...", "product_class": "...", "protocol": "cwmp",
"text": "part of serial or alias", "twins": "include"}``; a missing or empty key
matches any, except ``twins``: device twins are left out unless it is
``include`` (with the real devices) or ``only``.
"""

from __future__ import annotations

from typing import Any

from oktoscripts.devices.registry import DeviceFilter, DeviceRegistry

KEYS = ("status", "vendor", "product_class", "protocol", "text", "twins")
TWINS = {"exclude": False, "include": None, "only": True}
# The largest device set one bulk run is made for.
MAX_DEVICES = 100_000


def clean(raw: Any) -> dict[str, Any]:
    """A stored filter from user input; ValueError says what is wrong."""
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise ValueError("the device filter must be an object")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ValueError(
            f"unknown device filter key(s) {', '.join(unknown)} (use {', '.join(KEYS)})"
        )
    out: dict[str, Any] = {}
    for key in KEYS:
        value = raw.get(key)
        if value in (None, ""):
            continue
        if key == "status":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise ValueError(
                    "status must be 0 (offline), 1 (associating) or 2 (online)"
                ) from None
            if value not in (0, 1, 2):
                raise ValueError("status must be 0 (offline), 1 (associating) or 2 (online)")
        elif not isinstance(value, str):
            raise ValueError(f"{key} must be a string")
        elif key == "protocol" and value not in ("cwmp", "usp"):
            raise ValueError("protocol must be cwmp or usp")
        elif key == "twins" and value not in TWINS:
            raise ValueError("twins must be exclude, include or only")
        elif key == "twins" and value == "exclude":
            continue  # the default
        out[key] = value
    return out


def to_registry(stored: dict[str, Any]) -> DeviceFilter:
    fields = {k: v for k, v in (stored or {}).items() if k in KEYS and k != "twins"}
    return DeviceFilter(**fields, twins=TWINS[(stored or {}).get("twins") or "exclude"])


def describe(stored: dict[str, Any]) -> str:
    if not stored:
        return "all devices"
    return ", ".join(f"{k}={v}" for k, v in stored.items())


def serials(registry: DeviceRegistry, stored: dict[str, Any]) -> list[str]:
    """Every serial matching the filter (through the registry's paged listing)."""
    filters = to_registry(stored)
    out: list[str] = []
    page = 1000
    while True:
        docs, total = registry.list(filters, offset=len(out), limit=page)
        out.extend(doc["serial"] for doc in docs)
        if not docs or len(out) >= total:
            return out
        if len(out) > MAX_DEVICES:
            raise ValueError(f"the filter matches more than {MAX_DEVICES} devices")


def matches(registry: DeviceRegistry, stored: dict[str, Any], serial: str) -> bool:
    """Whether the device ``serial`` matches the filter (an empty one: any but a twin,
    also a device the registry does not know)."""
    filters = to_registry(stored)
    if not any(v for k, v in (stored or {}).items() if k != "twins"):
        if filters.twins is None:
            return True
        twin = {"_id": serial, "twin": {"$exists": True}}
        return (registry.collection.count_documents(twin, limit=1) > 0) == filters.twins
    query = filters.query()
    return registry.collection.count_documents({"$and": [{"_id": serial}, query]}, limit=1) > 0
