"""REST endpoint for the editor's parameter-path completion and hover
(ide/datamodel.py): the standard data models and what devices reported."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field
from pymongo.errors import PyMongoError

from ide import datamodel
from ide.api.auth import needs
from oktoscripts.config import ConfigError
from oktoscripts.roles import Capability

router = Router(tags=["devices"])
READ = needs(Capability.READ)


class PathQuery(Schema):
    prefix: str = Field("", max_length=1024, description="a path or its start: 'Device.WiFi.'")
    serial: str = Field(
        "",
        max_length=256,
        description="a device: add the paths devices of its product class reported",
    )


class PathNode(Schema):
    name: str
    path: str
    type: str
    writable: bool
    doc: str
    reported: bool


class PathChildren(Schema):
    prefix: str
    product_class: str | None
    children: list[PathNode]
    described: PathNode | None = Field(description="the prefix itself, when it is a known path")


def _reported(serial: str) -> tuple[str | None, dict[str, set[str]]]:
    """The product class of ``serial`` and the index of the paths its devices
    reported (none when the device database cannot be reached: the standard
    model stays). Both cached a while (ide/datamodel.py): this answers every "."."""
    from oktoscripts.devices.client import default_registry

    try:
        collection = default_registry().collection
        product_class = datamodel.product_class_of(serial, collection) if serial else None
        return product_class, datamodel.reported_index(product_class, collection)
    except (PyMongoError, ConfigError):  # no device database: the standard model alone
        return None, {}


@router.get(
    "/datamodel",
    response=PathChildren,
    summary="Parameter paths that may follow a prefix, with type and access",
    **READ,
)
def children(request: HttpRequest, query: Query[PathQuery]) -> dict:
    product_class, reported = _reported(query.serial.strip())
    described = datamodel.describe(query.prefix)
    return {
        "prefix": query.prefix,
        "product_class": product_class,
        "children": [
            n.as_json() for n in datamodel.children(query.prefix, reported_index=reported)
        ],
        "described": described.as_json() if described else None,
    }
