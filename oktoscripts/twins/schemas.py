"""The standard shape of a table's instances, for twins of tables that had no
instance when they were snapshotted.

A CWMP device tells what an instance of a table holds only through its
instances (GetParameterNames); of an empty table it tells nothing. The twin
then takes the instance's parameters (names, types, writability) from the
Broadband Forum data model the platform carries (``ide/data/datamodel.json``,
derived by tools/bbf_datamodel.py; read as data, nothing of the IDE is
imported), so AddObject on the twin's empty table gives the children the
standard defines.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from oktoscripts.sim.tr181 import supported_path

DATAMODEL = Path(__file__).resolve().parents[2] / "ide" / "data" / "datamodel.json"
# Named BBF data types -> the xsd type a CPE reports; others (and "list of ...") are strings.
XSD = {
    "string": "string",
    "boolean": "boolean",
    "int": "int",
    "long": "long",
    "unsignedInt": "unsignedInt",
    "unsignedLong": "unsignedLong",
    "dateTime": "dateTime",
    "base64": "base64",
    "hexBinary": "hexBinary",
    "decimal": "decimal",
    "StatsCounter32": "unsignedInt",
    "StatsCounter64": "unsignedLong",
    "Dbm1000": "int",
}
WRITABLE = ("readWrite", "writeOnceReadOnly")


@lru_cache(maxsize=1)
def _paths() -> dict[str, tuple[str, str]]:
    """Every standard path -> (type, access)."""
    try:
        models = json.loads(DATAMODEL.read_text(encoding="utf-8"))["models"]
    except OSError:  # an installation without the IDE's data: no standard shapes
        return {}
    return {p[0]: (p[1], p[2]) for m in models for p in m["paths"]}


def standard_schema(instance: str) -> dict[str, Any] | None:
    """What an instance of supported path ``instance`` (``...{i}.``) holds in the
    standard: ``{"params": [{"n", "t", "w"}], "objects": [relative paths]}``
    (parameters and single sub-objects, not deeper tables), None if unknown."""
    paths = _paths()
    if instance not in paths:
        return None
    params, objects = [], []
    for path, (kind, access) in paths.items():
        if not path.startswith(instance) or path == instance:
            continue
        rest = path[len(instance) :]
        if "{i}" in rest:
            continue  # inside a deeper table: its own schema
        if kind == "object":
            objects.append(rest)
        else:
            params.append({"n": rest, "t": XSD.get(kind, "string"), "w": access in WRITABLE})
    return {"params": params, "objects": objects}


def empty_table_schemas(tables: list[str], objects: list[str]) -> dict[str, dict[str, Any]]:
    """The standard schemas of the tables among ``tables`` (AddObject-able table
    paths) that have no instance among ``objects``, by supported instance path."""
    out = {}
    for table in tables:
        if any(o.startswith(table) and o[len(table) :].split(".", 1)[0].isdigit() for o in objects):
            continue
        key = supported_path(table) + "{i}."
        schema = standard_schema(key)
        if schema is not None:
            out[key] = schema
    return out
