"""What the editor knows of a ``send_usp_message`` payload: the fields of the
USP Msg a script may send, read from the protobuf descriptors the controller
itself parses payloads with (so completion offers exactly what parses), and
for each request type a shape to insert (a minimal request that parses).

A node: ``{"type": "message" | "string" | "bool" | "number" | "enum" | "map",
"repeated": bool, "fields": {name: node}, "values": [enum names]}``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from oktoscripts.usp.messages import SCRIPT_REQUESTS
from oktoscripts.usp.proto.usp_msg_pb2 import Header, Msg

# Header fields a script may set (the rest is the platform's).
HEADER_FIELDS = ("msg_id", "msg_type")
# The smallest useful request of each type: what choosing it inserts. Paths are
# where the cursor lands to go on with path completion.
SHAPES: dict[str, dict[str, Any]] = {
    "get": {"param_paths": ["Device."]},
    "set": {
        "update_objs": [{"obj_path": "Device.", "param_settings": [{"param": "", "value": ""}]}]
    },
    "add": {
        "create_objs": [{"obj_path": "Device.", "param_settings": [{"param": "", "value": ""}]}]
    },
    "delete": {"obj_paths": ["Device."]},
    "operate": {"command": "Device.", "command_key": "", "send_resp": True},
    "get_instances": {"obj_paths": ["Device."], "first_level_only": True},
    "get_supported_dm": {"obj_paths": ["Device."], "first_level_only": True},
    "get_supported_protocol": {"controller_supported_protocol_versions": "1.3"},
}

_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_ENUM: "enum",
}


def _field(field: FieldDescriptor, depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"repeated": bool(field.is_repeated)}
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            return {"type": "map", "repeated": False}
        node.update(type="message", fields=_fields(field.message_type, depth + 1))
    else:
        node["type"] = _SCALARS.get(field.type, "number")
        if field.type == FieldDescriptor.TYPE_ENUM:
            node["values"] = [v.name for v in field.enum_type.values]
    return node


def _fields(message: Descriptor, depth: int, only: tuple[str, ...] = ()) -> dict[str, Any]:
    if depth > 8:  # no recursive message in a request, but never loop
        return {}
    return {f.name: _field(f, depth) for f in message.fields if not only or f.name in only}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The Msg a script sends, as nodes, and the request shapes."""
    request = Msg.DESCRIPTOR.fields_by_name["body"].message_type.fields_by_name["request"]
    requests = _fields(request.message_type, 2, SCRIPT_REQUESTS)
    msg = {
        "type": "message",
        "repeated": False,
        "fields": {
            "header": {
                "type": "message",
                "repeated": False,
                "fields": _fields(Header.DESCRIPTOR, 1, HEADER_FIELDS),
            },
            "body": {
                "type": "message",
                "repeated": False,
                "fields": {"request": {"type": "message", "repeated": False, "fields": requests}},
            },
        },
    }
    return {"msg": msg, "shapes": SHAPES}
