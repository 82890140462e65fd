"""Data models of device twins, built from a snapshot of a real device.

A twin answers like its original because it holds what the original
reported, nothing the simulator invents: every name, value, xsd type and
Writable flag (CWMP), every supported object, parameter type and access,
command and event, and every instantiated object (USP). The simulator's own
RPC code (``datamodel``, ``usp_requests``) answers from these models, so
faults for unknown paths, non-writable parameters and bad values are the
simulator's, with TR-069 fault codes and USP error codes.

Snapshot shapes (what ``oktoscripts.twins.snapshot`` stores; lists, because
MongoDB reads dots in keys as nesting):

- CWMP: ``{"protocol": "cwmp", "root", "objects": [{"n", "w"}], "params":
  [{"n", "v", "t", "w"}]}``
- USP: ``{"protocol": "usp", "supported": [{"path", "multi", "access",
  "unique_keys", "params": [{"name", "type", "access"}], "commands": [{"name",
  "async", "inputs", "outputs"}], "events": [{"name", "args"}]}], "objects":
  [path, ...], "values": [{"n", "v"}]}``
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from oktoscripts.sim import datamodel, tr181
from oktoscripts.sim.tr181 import supported_path

_INSTANCE = re.compile(r"(.*\.)(\d+)\.\Z")
_DEFAULTS = {"boolean": "0", "unsignedInt": "0", "int": "0", "long": "0", "unsignedLong": "0"}


# A table inside an instance, relative to it: "IPv4Address.{i}." or "X.Rule.{i}.".
_NESTED_TABLE = re.compile(r"([^{}]+\.)\{i\}\.\Z")


@dataclass
class InstanceSchema:
    """What a new instance of a table holds: its parameters by relative name
    (type, Writable) and its single sub-objects (``Stats.``)."""

    params: dict[str, tuple[str, bool]] = field(default_factory=dict)
    objects: set[str] = field(default_factory=set)

    def template(self) -> dict[str, datamodel.Parameter]:
        """The new instance's parameters, each at the default value of its type."""
        return {
            name: datamodel.Parameter(_DEFAULTS.get(xsd, ""), xsd, writable)
            for name, (xsd, writable) in self.params.items()
        }


class CwmpTwinModel(datamodel.DataModel):
    """A TR-069 data model holding the snapshot's objects as well as its
    parameters, so that empty objects and empty tables exist as on the original,
    and the schema of each table's instances, so that AddObject makes an
    instance with the children the original's instances have."""

    def __init__(self, root: str) -> None:
        super().__init__(root=root)
        self.object_paths: set[str] = {root}
        self.schemas: dict[str, InstanceSchema] = {}  # supported instance path -> schema
        self.writable_tables: set[str] = set()  # supported paths of AddObject-able tables

    def objects(self) -> set[str]:
        # Every object the original reported, kept up to date by Add/DeleteObject:
        # not derived from the parameters on each request (5,000 of them on a big CPE).
        return self.object_paths

    def add_object(self, path: str) -> int:
        number = super().add_object(path)
        instance = f"{path}{number}."
        key = supported_path(path) + "{i}."
        schema = self.schemas.get(key, InstanceSchema())
        self.object_paths.add(instance)
        for rel in [*schema.objects, *self.tables[path]]:
            parts = rel.split(".")[:-1]
            for i in range(1, len(parts) + 1):
                self.object_paths.add(instance + ".".join(parts[:i]) + ".")
        for nested_key, nested in self.schemas.items():
            match = _NESTED_TABLE.fullmatch(nested_key[len(key) :])
            if not nested_key.startswith(key) or match is None:
                continue
            table = instance + match.group(1)  # an empty table of the new instance
            self.object_paths.add(table)
            if supported_path(table) in self.writable_tables:
                self.tables[table] = nested.template()
                self.next_instance[table] = 1
        return number

    def delete_object(self, path: str) -> None:
        match = _INSTANCE.fullmatch(path)
        if not match or match.group(1) not in self.tables or path not in self.objects():
            raise datamodel.CwmpFault("9005", f"Not an object instance: {path}")
        for name in [n for n in self.params if n.startswith(path)]:
            del self.params[name]
        self.object_paths -= {o for o in self.object_paths if o.startswith(path)}
        for table in [t for t in self.tables if t.startswith(path)]:
            del self.tables[table]
            self.next_instance.pop(table, None)


def cwmp_model(snapshot: dict[str, Any]) -> CwmpTwinModel:
    """The twin's model: the snapshot's parameters, and a table (what AddObject
    may add to) for each object the original reported writable. A new instance
    holds what the original's instances of that table hold (the union of their
    parameter names, with their types and Writable flags, at default values; not
    a copy of one instance), or for a table that had none the schema the
    snapshot carries (the standard's), numbered after the highest instance."""
    model = CwmpTwinModel(snapshot["root"])
    for p in snapshot["params"]:
        model.params[p["n"]] = datamodel.Parameter(p["v"], p.get("t") or "string", bool(p["w"]))
    writable_objects = set()
    for o in snapshot["objects"]:
        model.object_paths.add(o["n"])
        if o.get("w") and not _INSTANCE.fullmatch(o["n"]):
            writable_objects.add(o["n"])
    model.schemas = instance_schemas(model.object_paths, model.params)
    for key, entry in (snapshot.get("schemas") or {}).items():
        model.schemas.setdefault(
            key,
            InstanceSchema(
                {p["n"]: (p.get("t") or "string", bool(p["w"])) for p in entry["params"]},
                set(entry.get("objects") or ()),
            ),
        )
    model.writable_tables = {supported_path(t) for t in writable_objects}
    for table in writable_objects:
        numbers = _instance_numbers(model.object_paths, table)
        model.next_instance[table] = max(numbers, default=0) + 1
        schema = model.schemas.get(supported_path(table) + "{i}.", InstanceSchema())
        model.tables[table] = schema.template()
    return model


def instance_schemas(
    objects: set[str], params: dict[str, datamodel.Parameter]
) -> dict[str, InstanceSchema]:
    """The schema of every table's instances from the instances there are: by
    supported instance path, each parameter and sub-object any instance has
    directly (not inside a deeper instance)."""
    schemas: dict[str, InstanceSchema] = {}
    for name in list(params) + list(objects):
        parts = name.split(".")
        for i in range(len(parts) - 2, -1, -1):  # the innermost instance on the path
            if parts[i].isdigit():
                rel = ".".join(parts[i + 1 :])
                if rel and rel != ".":
                    schema = schemas.setdefault(
                        supported_path(".".join(parts[: i + 1]) + "."), InstanceSchema()
                    )
                    if name.endswith("."):
                        schema.objects.add(rel)
                    else:
                        p = params[name]
                        schema.params[rel] = (p.type, p.writable)
                break
    return schemas


def _instance_numbers(objects: set[str], table: str) -> list[int]:
    out = []
    for path in objects:
        match = _INSTANCE.fullmatch(path)
        if match and match.group(1) == table:
            out.append(int(match.group(2)))
    return out


# ---- USP ---------------------------------------------------------------------------------

# ParamAccessType and ObjAccessType of GetSupportedDMResp.
PARAM_READ_WRITE, PARAM_WRITE_ONLY = 1, 2
OBJ_ADD_DELETE, OBJ_ADD_ONLY = 1, 2


def usp_supported(entries: list[dict[str, Any]]) -> dict[str, tr181.ObjectSpec]:
    """The supported data model of a snapshot, as the simulator's ObjectSpecs."""
    out = {}
    for entry in entries:
        params = {
            p["name"]: tr181.ParamSpec(
                type=p.get("type") or "string",
                writable=p.get("access") in (PARAM_READ_WRITE, PARAM_WRITE_ONLY),
                write_only=p.get("access") == PARAM_WRITE_ONLY,
            )
            for p in entry.get("params", [])
        }
        commands = {
            c["name"]: tr181.CommandSpec(
                bool(c.get("async")), tuple(c.get("inputs", ())), tuple(c.get("outputs", ()))
            )
            for c in entry.get("commands", [])
        }
        events = {e["name"]: tuple(e.get("args", ())) for e in entry.get("events", [])}
        out[entry["path"]] = tr181.ObjectSpec(
            params,
            multi=bool(entry.get("multi")),
            creatable=entry.get("access") in (OBJ_ADD_DELETE, OBJ_ADD_ONLY),
            unique_keys=tuple(entry.get("unique_keys", ())),
            commands=commands,
            events=events,
        )
    return out


def usp_model(snapshot: dict[str, Any]) -> tr181.DataModel:
    """The twin agent's model: the original's supported data model, objects
    (in the order it reported them) and values; new instances numbered after
    the highest of each table."""
    model = tr181.DataModel()
    model.supported = usp_supported(snapshot["supported"])
    model.objects = dict.fromkeys(snapshot["objects"])
    model.values = {v["n"]: v["v"] for v in snapshot["values"]}
    for path in model.objects:
        match = _INSTANCE.fullmatch(path)
        if match:
            table, number = match.group(1), int(match.group(2))
            model.next_instance[table] = max(model.next_instance.get(table, 1), number + 1)
    return model
