"""Device twins and their snapshots in MongoDB.

``twin_snapshots``: one document per snapshot of a device, numbered per
device (``version`` 1, 2, ...), with the device's identity facts at the time
and the data model (``oktoscripts.sim.twin_models`` shapes).

``twins``: one document per twin, its ``_id`` the twin's serial::

    source          serial (CWMP) or Endpoint ID (USP) of the original
    protocol        "cwmp" | "usp"
    state           requested -> snapshotting -> running | failed
    snapshot        the snapshot version it answers from (None until taken)
    generation      raised by a reset: the twin host rebuilds it from the snapshot
    error           why it failed ("" otherwise)
    requested_by, created_at, updated_at

The twin host (``manage.py twins run``) takes the snapshots of requested
twins and runs them; everything else only writes these documents. A twin's
device document carries ``twin: {of, snapshot}``, set before the twin first
talks to the platform, so it is never taken for a new real device.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pymongo
from pymongo.database import Database

from oktoscripts.devices import identifiers
from oktoscripts.devices.documents import PROTOCOLS

TWINS = "twins"
SNAPSHOTS = "twin_snapshots"
CWMP_SUFFIX = "~twin"
# TR-369 Endpoint IDs cannot hold "~" (scheme:authority:instance, [A-Za-z0-9-._%:]).
USP_SUFFIX = "-twin"
IDENTITY_FIELDS = ("vendor", "model", "version", "hw_version", "product_class", "oui", "data_model")


class TwinError(ValueError):
    """A twin that cannot be made, reset or deleted; the message says why."""


class TwinNotFound(TwinError):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def ensure_indexes(db: Database) -> None:
    db[SNAPSHOTS].create_index([("serial", 1), ("version", -1)], name="serial_version", unique=True)
    db[TWINS].create_index("state", name="state")


def protocol_of(device: dict[str, Any]) -> str:
    """The protocol a twin of ``device`` speaks (CWMP when a device has both)."""
    for protocol in PROTOCOLS:
        if isinstance(device.get(protocol), dict):
            return protocol
    raise TwinError(f"{device.get('serial')} has spoken neither CWMP nor USP yet")


def twin_serial(source: str, protocol: str, name: str | None = None) -> str:
    """The twin's serial: ``name`` when given, else the source's with a suffix."""
    serial = name or source + (CWMP_SUFFIX if protocol == "cwmp" else USP_SUFFIX)
    try:
        identifiers.check_serial(serial)
    except identifiers.InvalidIdentifier as exc:
        raise TwinError(f"cannot name a twin {serial!r}: {exc}") from None
    if protocol == "usp":
        from oktoscripts.usp.endpoint import endpoint_id_problem

        problem = endpoint_id_problem(serial)
        if problem:
            raise TwinError(f"a USP twin's name must be an Endpoint ID: {problem}")
    elif len(serial) > identifiers.TR069_STRING_MAX:
        raise TwinError(
            f"a CWMP twin's serial is at most {identifiers.TR069_STRING_MAX} "
            "characters (TR-069's SerialNumber)"
        )
    return serial


def request(db: Database, source: str, *, name: str | None = None, by: str = "") -> dict[str, Any]:
    """Ask for a twin of device ``source``: the twin host snapshots the device
    and starts the twin. Returns the twin document."""
    device = db["devices"].find_one({"_id": source})
    if device is None:
        raise TwinNotFound(f"no device {source!r}")
    if device.get("twin"):
        raise TwinError(f"{source} is itself a twin: twin its original instead")
    protocol = protocol_of(device)
    serial = twin_serial(source, protocol, name)
    if db["devices"].find_one({"_id": serial}, {"twin": 1}) is not None:
        raise TwinError(f"a device {serial!r} already exists: delete it or choose another name")
    now = _now()
    doc = {
        "_id": serial,
        "source": source,
        "protocol": protocol,
        "state": "requested",
        "snapshot": None,
        "generation": 0,
        "error": "",
        "requested_by": by,
        "created_at": now,
        "updated_at": now,
    }
    try:
        db[TWINS].insert_one(doc)
    except pymongo.errors.DuplicateKeyError:
        raise TwinError(f"a twin {serial!r} exists already") from None
    # Its device exists (offline, marked) from now on: its page shows the state.
    mark_device(db, doc, {k: device.get(k, "") for k in IDENTITY_FIELDS})
    return doc


def get(db: Database, serial: str) -> dict[str, Any]:
    doc = db[TWINS].find_one({"_id": serial})
    if doc is None:
        raise TwinNotFound(f"no twin {serial!r}")
    return doc


def all_twins(db: Database) -> list[dict[str, Any]]:
    return list(db[TWINS].find().sort("_id", 1))


def set_state(db: Database, serial: str, state: str, **fields: Any) -> None:
    db[TWINS].update_one(
        {"_id": serial}, {"$set": {"state": state, "updated_at": _now(), **fields}}
    )


def reset(db: Database, serial: str) -> dict[str, Any]:
    """Put the twin back to its snapshot (the host rebuilds it)."""
    doc = db[TWINS].find_one_and_update(
        {"_id": serial},
        {"$inc": {"generation": 1}, "$set": {"updated_at": _now()}},
        return_document=pymongo.ReturnDocument.AFTER,
    )
    if doc is None:
        raise TwinNotFound(f"no twin {serial!r}")
    return doc


def delete(db: Database, serial: str) -> None:
    """Forget the twin and its device (the host stops it); its snapshots stay."""
    if db[TWINS].delete_one({"_id": serial}).deleted_count == 0:
        raise TwinNotFound(f"no twin {serial!r}")
    from oktoscripts.devices.registry import DeviceRegistry

    if db["devices"].find_one({"_id": serial, "twin": {"$exists": True}}, {"_id": 1}):
        DeviceRegistry(db).delete(serial)


# ---- snapshots ------------------------------------------------------------------------


def save_snapshot(
    db: Database,
    serial: str,
    data: dict[str, Any],
    *,
    identity: dict[str, Any] | None = None,
    sha256: str = "",
) -> int:
    """Store a new snapshot of device ``serial``; its version number. The
    identity facts are the device's now, unless given (a shipped snapshot)."""
    if identity is None:
        device = db["devices"].find_one({"_id": serial}) or {}
        identity = {k: device.get(k, "") for k in IDENTITY_FIELDS}
    latest = db[SNAPSHOTS].find_one({"serial": serial}, {"version": 1}, sort=[("version", -1)])
    version = (latest or {}).get("version", 0) + 1
    db[SNAPSHOTS].insert_one(
        {
            "_id": f"{serial}@{version}",
            "serial": serial,
            "version": version,
            "protocol": data["protocol"],
            "taken_at": _now(),
            "identity": identity,
            "parameters": len(data.get("params") or data.get("values") or []),
            "data": data,
            **({"sha256": sha256} if sha256 else {}),
        }
    )
    return version


def request_demo(
    db: Database, serial: str, source: str, version: int, identity: dict[str, Any], by: str
) -> str:
    """Ask for the twin ``serial`` of a shipped snapshot (``source`` version
    ``version``), running from the start (there is no device to read); one that
    exists moves to ``version`` when it answers from another (a reset)."""
    device = db["devices"].find_one({"_id": serial}, {"twin": 1})
    if device is not None and not device.get("twin"):
        raise TwinError(f"a device {serial!r} exists that is not a twin: no demo twin there")
    now = _now()
    doc = db[TWINS].find_one_and_update(
        {"_id": serial},
        {
            "$setOnInsert": {
                "source": source,
                "protocol": "cwmp",
                "state": "running",
                "generation": 0,
                "error": "",
                "requested_by": by,
                "created_at": now,
                "demo": True,
            },
            "$set": {"updated_at": now},
        },
        upsert=True,
        return_document=pymongo.ReturnDocument.AFTER,
    )
    if doc["source"] != source:  # a twin of a real device already has this serial
        raise TwinError(f"{serial} is a twin of {doc['source']}, not the demo {source}")
    if doc.get("snapshot") != version:
        doc = db[TWINS].find_one_and_update(
            {"_id": serial},
            {"$set": {"snapshot": version, "state": "running"}, "$inc": {"generation": 1}},
            return_document=pymongo.ReturnDocument.AFTER,
        )
    mark_device(db, doc, identity)
    return serial


def load_snapshot(db: Database, serial: str, version: int) -> dict[str, Any]:
    doc = db[SNAPSHOTS].find_one({"serial": serial, "version": version})
    if doc is None:
        raise TwinNotFound(f"no snapshot {version} of {serial!r}")
    return doc


def snapshots(db: Database, serial: str) -> list[dict[str, Any]]:
    """The snapshots of a device, newest first, without their data."""
    return list(db[SNAPSHOTS].find({"serial": serial}, {"data": 0}).sort("version", -1))


def mark_device(db: Database, twin: dict[str, Any], identity: dict[str, Any]) -> None:
    """Make the twin's device document (before the twin first speaks), marked as a
    twin and with its original's identity facts."""
    now = _now()
    db["devices"].update_one(
        {"_id": twin["_id"]},
        {
            "$set": {
                "twin": {"of": twin["source"], "snapshot": twin["snapshot"]},
                **{k: v for k, v in identity.items() if v},
            },
            "$setOnInsert": {"serial": twin["_id"], "first_seen": now, "status": 0},
        },
        upsert=True,
    )
