"""The built-in demo twins: devices started from snapshot files shipped with
the project (``oktoscripts/twins/snapshots/*.json``, made by
``tools/twin_snapshots.py``): the platform's own simulated TR-181 CPE, a
richer TR-181 home gateway and a TR-098 one.

``ensure`` stores each file as a snapshot of the pseudo-device
``demo:<file name>`` (a new version only when the file changed) and asks for
its twin, already in state ``running``: the twin host starts it as it starts
any twin (``twins run --demo`` does this at start, and ``up`` runs that; or
``twins demo`` once). Each registers under the serial in its file and is
marked a twin like any other, so reset and delete work as for any twin (a
deleted demo twin comes back when ``ensure`` runs again).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from pymongo.database import Database

from oktoscripts.twins import store

log = logging.getLogger(__name__)
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
SOURCE_PREFIX = "demo:"
# Keys of a shipped file that are about the file, not the device's data model.
FILE_KEYS = ("about", "serial", "identity")


def shipped() -> dict[str, dict[str, Any]]:
    """Every shipped snapshot by name (its file name without .json)."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SNAPSHOTS.glob("*.json"))
    }


def ensure(db: Database, by: str = "demo") -> list[str]:
    """Make sure each shipped snapshot is stored and its twin asked for; the
    twins' serials."""
    store.ensure_indexes(db)
    serials = []
    for name, content in shipped().items():
        source = SOURCE_PREFIX + name
        data = {k: v for k, v in content.items() if k not in FILE_KEYS}
        version = _stored_version(db, source, data, content["identity"])
        try:
            store.request_demo(db, content["serial"], source, version, content["identity"], by=by)
        except store.TwinError as exc:  # its serial is taken: the others still start
            log.warning("demo twin %s: %s", name, exc)
            continue
        serials.append(content["serial"])
    return serials


def _stored_version(db: Database, source: str, data: dict, identity: dict) -> int:
    """The version of the stored snapshot holding ``data``: the newest when it is
    the same (the file has not changed), else a new one."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    latest = db[store.SNAPSHOTS].find_one(
        {"serial": source}, {"version": 1, "sha256": 1}, sort=[("version", -1)]
    )
    if latest is not None and latest.get("sha256") == digest:
        return latest["version"]
    return store.save_snapshot(db, source, data, identity=identity, sha256=digest)
