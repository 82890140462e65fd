"""REST endpoints of device twins (oktoscripts/twins).

Making, resetting and deleting a twin talks to devices (a twin reads its
original's whole data model, and is a device scripts can change), so it needs
the ``run`` capability (Operators and Admins); reading needs ``read``. The twin
host (``manage.py twins run``) does the work: a new twin answers 202 in state
``requested``, and its state says when it runs. Every change is audited.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from ide import converters  # noqa: F401 - registers the "serial" path converter
from ide.api.auth import ApiError, needs
from ide.api.devices import _database
from ide.api.schemas import SnapshotList, TwinList, TwinOut, TwinRequest, TwinReset
from oktoscripts.devices.documents import iso
from oktoscripts.roles import Capability
from oktoscripts.scripts import audit
from oktoscripts.twins import store

router = Router(tags=["twins"])
READ = needs(Capability.READ)
RUN = needs(Capability.RUN)


def _db() -> Any:
    from oktoscripts.devices.client import mongo_database

    return _database(mongo_database)


def twin_json(doc: dict) -> dict:
    return {
        "serial": doc["_id"],
        "source": doc["source"],
        "protocol": doc["protocol"],
        "state": doc["state"],
        "snapshot": doc.get("snapshot"),
        "error": doc.get("error") or "",
        "requested_by": doc.get("requested_by") or "",
        "created_at": iso(doc.get("created_at")),
        "updated_at": iso(doc.get("updated_at")),
    }


def _call(action: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return _database(lambda: action(*args, **kwargs))
    except store.TwinNotFound as exc:
        raise ApiError(str(exc), 404) from None
    except store.TwinError as exc:
        raise ApiError(str(exc), 409) from None


@router.post(
    "/twins",
    response={202: TwinOut},
    summary="Make a twin of a device (the twin host snapshots and starts it)",
    **RUN,
)
def create_twin(request: HttpRequest, body: TwinRequest) -> Any:
    doc = _call(
        store.request, _db(), body.source, name=body.name or None, by=request.user.get_username()
    )
    audit.record(request.user, "twin.create", doc["_id"], source=body.source)
    return 202, twin_json(doc)


@router.get("/twins", response=TwinList, summary="Every device twin", **READ)
def list_twins(request: HttpRequest) -> dict:
    return {"results": [twin_json(d) for d in _call(store.all_twins, _db())]}


@router.get("/twins/{serial:serial}", response=TwinOut, summary="A device twin", **READ)
def get_twin(request: HttpRequest, serial: str) -> dict:
    return twin_json(_call(store.get, _db(), serial))


@router.post("/twin-resets", response=TwinOut, summary="Put a twin back to its snapshot", **RUN)
def reset_twin(request: HttpRequest, body: TwinReset) -> dict:
    doc = _call(store.reset, _db(), body.serial)
    audit.record(request.user, "twin.reset", body.serial)
    return twin_json(doc)


@router.delete(
    "/twins/{serial:serial}",
    response=TwinOut,
    summary="Stop a twin and forget its device (its snapshots stay)",
    **RUN,
)
def delete_twin(request: HttpRequest, serial: str) -> dict:
    db = _db()
    doc = _call(store.get, db, serial)
    _call(store.delete, db, serial)
    audit.record(request.user, "twin.delete", serial)
    return twin_json(doc)


@router.get(
    "/snapshots",
    response=SnapshotList,
    summary="The snapshots taken of a device, newest first",
    **READ,
)
def list_snapshots(request: HttpRequest, serial: str) -> dict:
    docs = _call(store.snapshots, _db(), serial)
    return {
        "results": [
            {
                "serial": d["serial"],
                "version": d["version"],
                "protocol": d["protocol"],
                "taken_at": iso(d.get("taken_at")),
                "parameters": d.get("parameters", 0),
                "identity": d.get("identity") or {},
            }
            for d in docs
        ]
    }
