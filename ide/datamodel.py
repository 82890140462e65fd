"""Parameter paths for the editor's completion and hover: the Broadband Forum's
standard TR-181 (Device:2) and TR-098 (InternetGatewayDevice:1) data models,
kept in ide/data/datamodel.json (derived by tools/bbf_datamodel.py, with the
BBF licence), and the paths that devices of a product class have reported
(their refreshed parameters in the device registry).

Completion asks for the children of a path prefix: ``Device.WiFi.`` ->
``SSID.``, ``Radio.``, ``AccessPoint.`` ... with type and access. Instance
numbers typed by the user (``Device.WiFi.SSID.1.``) are looked up as ``{i}``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "datamodel.json"
REPORTED_TTL_S = 60.0  # how long the paths devices reported are kept per product class
REPORTED_DEVICES = 50  # devices of a product class whose paths are read
_INSTANCE = re.compile(r"\.\d+(?=\.)")


@dataclass(frozen=True)
class Node:
    """One child of a path: ``name`` is its last segment (objects end with ".")."""

    name: str
    path: str
    type: str
    access: str  # "readOnly" | "readWrite"
    doc: str = ""
    reported: bool = False  # a device of the product class has it

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "type": self.type,
            "writable": self.access == "readWrite",
            "doc": self.doc,
            "reported": self.reported,
        }


def _split(path: str) -> tuple[str, str]:
    """``A.B.C`` -> (``A.B.``, ``C``); ``A.B.`` -> (``A.``, ``B.``)."""
    body = path[:-1] if path.endswith(".") else path
    cut = body.rfind(".")
    return path[: cut + 1], path[cut + 1 :]


@lru_cache(maxsize=1)
def _standard() -> tuple[dict[str, dict[str, Node]], dict[str, Node]]:
    """(parent path -> {child name: Node}, path -> Node) of the standard models."""
    children: dict[str, dict[str, Node]] = {}
    by_path: dict[str, Node] = {}
    data = json.loads(DATA.read_text(encoding="utf-8"))
    for model in data["models"]:
        for path, kind, access, doc in model["paths"]:
            node = Node(_split(path)[1], path, kind, access, doc)
            by_path[path] = node
            _add(children, node)
            if path.endswith(".{i}."):  # the table itself: "Device.WiFi.SSID."
                table = path[: -len("{i}.")]
                if table not in by_path:
                    _add(children, Node(_split(table)[1], table, "table", "readOnly", doc))
    return children, by_path


def _add(children: dict[str, dict[str, Node]], node: Node) -> None:
    children.setdefault(_split(node.path)[0], {}).setdefault(node.name, node)


def generic(path: str) -> str:
    """``Device.WiFi.SSID.1.SSID`` -> ``Device.WiFi.SSID.{i}.SSID``."""
    return _INSTANCE.sub(".{i}", path)


def describe(path: str) -> Node | None:
    """The standard model's entry for a path (instance numbers allowed), for hover."""
    return _standard()[1].get(generic(path))


def index(paths: list[str]) -> dict[str, set[str]]:
    """Every prefix of the reported ``paths`` -> the names that follow it there
    (objects with their "."): built once per product class, so completion looks
    a prefix up instead of scanning every reported path on each keystroke."""
    out: dict[str, set[str]] = {}
    for path in paths:
        start = 0
        while True:
            dot = path.find(".", start)
            name = path[start:] if dot < 0 else path[start : dot + 1]
            if name:
                out.setdefault(path[:start], set()).add(name)
            if dot < 0:
                break
            start = dot + 1
    return out


def children(
    prefix: str, reported: list[str] = (), reported_index: dict[str, set[str]] | None = None
) -> list[Node]:
    """What may follow ``prefix`` (which ends with "." or is a root's start):
    the standard model's children, then the instances and vendor paths that
    devices reported (``reported``: full paths, or their ``index``)."""
    parent = _split(prefix)[0] if not prefix.endswith(".") else prefix
    found: dict[str, Node] = {}
    if parent == "":
        roots = [n for p, kids in _standard()[0].items() if p == "" for n in kids.values()]
        found.update({n.name: n for n in roots})
    else:
        standard = _standard()[0].get(generic(parent), {})
        for name, node in standard.items():
            path = parent + name if name != "{i}." else node.path
            found[name] = Node(name, path, node.type, node.access, node.doc)
    names = (reported_index if reported_index is not None else index(list(reported))).get(
        parent, ()
    )
    for name in names:
        dot = name.find(".")
        known = found.get(name) or describe(parent + name)
        if known is not None:
            found[name] = Node(name, parent + name, known.type, known.access, known.doc, True)
        else:  # a vendor's own path
            found[name] = Node(
                name, parent + name, "object" if dot >= 0 else "unknown", "readOnly", "", True
            )
    return sorted(found.values(), key=lambda n: (not n.reported, n.name == "{i}.", n.name))


_reported: dict[str, tuple[float, list[str], dict[str, set[str]]]] = {}
_product_classes: dict[str, tuple[float, str | None]] = {}


def product_class_of(serial: str, collection: Any) -> str | None:
    """A device's product class (cached a while: completion asks on every ".")."""
    hit = _product_classes.get(serial)
    if hit is not None and time.monotonic() - hit[0] < REPORTED_TTL_S:
        return hit[1]
    doc = collection.find_one({"_id": serial}, {"product_class": 1})
    found = (doc or {}).get("product_class") or None
    if len(_product_classes) > 10_000:  # serials typed by anyone: keep it bounded
        _product_classes.clear()
    _product_classes[serial] = (time.monotonic(), found)
    return found


def reported_index(product_class: str | None, collection: Any) -> dict[str, set[str]]:
    """``index`` of the paths devices of ``product_class`` reported (cached with them)."""
    reported_paths(product_class, collection)
    return _reported[product_class or ""][2]


def reported_paths(product_class: str | None, collection: Any) -> list[str]:
    """The parameter paths devices of ``product_class`` reported (cached a while)."""
    key = product_class or ""
    hit = _reported.get(key)
    if hit is not None and time.monotonic() - hit[0] < REPORTED_TTL_S:
        return hit[1]
    query: dict[str, Any] = {"params.0": {"$exists": True}}
    if product_class:
        query["product_class"] = product_class
    paths: set[str] = set()
    for doc in collection.find(query, {"params.path": 1}).limit(REPORTED_DEVICES):
        paths.update(p.get("path", "") for p in doc.get("params") or [] if isinstance(p, dict))
    result = sorted(p for p in paths if p)
    _reported[key] = (time.monotonic(), result, index(result))
    return result
