"""USP Messages: building them, and reading the ones scripts give in the
protobuf JSON mapping."""

from __future__ import annotations

import json
import uuid
from typing import Any

from google.protobuf import json_format

from oktoscripts.usp.proto import usp_msg_pb2

Msg = usp_msg_pb2.Msg
MsgType = usp_msg_pb2.Header.MsgType

# Request field of Request.req_type -> (its MsgType, the MsgType and field of its response).
REQUESTS: dict[str, tuple[int, int, str]] = {
    "get": (MsgType.GET, MsgType.GET_RESP, "get_resp"),
    "set": (MsgType.SET, MsgType.SET_RESP, "set_resp"),
    "add": (MsgType.ADD, MsgType.ADD_RESP, "add_resp"),
    "delete": (MsgType.DELETE, MsgType.DELETE_RESP, "delete_resp"),
    "operate": (MsgType.OPERATE, MsgType.OPERATE_RESP, "operate_resp"),
    "notify": (MsgType.NOTIFY, MsgType.NOTIFY_RESP, "notify_resp"),
    "get_instances": (MsgType.GET_INSTANCES, MsgType.GET_INSTANCES_RESP, "get_instances_resp"),
    "get_supported_dm": (
        MsgType.GET_SUPPORTED_DM,
        MsgType.GET_SUPPORTED_DM_RESP,
        "get_supported_dm_resp",
    ),
    "get_supported_protocol": (
        MsgType.GET_SUPPORTED_PROTO,
        MsgType.GET_SUPPORTED_PROTO_RESP,
        "get_supported_protocol_resp",
    ),
    "register": (MsgType.REGISTER, MsgType.REGISTER_RESP, "register_resp"),
    "deregister": (MsgType.DEREGISTER, MsgType.DEREGISTER_RESP, "deregister_resp"),
}
RESPONSE_FIELDS = {response_field: name for name, (_, _, response_field) in REQUESTS.items()}
# What a controller may send to an agent on behalf of a script.
SCRIPT_REQUESTS = (
    "get",
    "set",
    "add",
    "delete",
    "operate",
    "get_instances",
    "get_supported_dm",
    "get_supported_protocol",
)


class PayloadError(ValueError):
    """A payload from a script that is not a USP request Msg; str() says why."""


def new_msg_id() -> str:
    return uuid.uuid4().hex


def request_kind(msg: Msg) -> str | None:
    """The request field set in ``msg`` ("get", "set", ...), or None."""
    if msg.body.WhichOneof("msg_body") != "request":
        return None
    return msg.body.request.WhichOneof("req_type")


def response_kind(msg: Msg) -> str | None:
    """The response field set in ``msg`` ("get_resp", ...), "error", or None."""
    body = msg.body.WhichOneof("msg_body")
    if body == "error":
        return "error"
    if body == "response":
        return msg.body.response.WhichOneof("resp_type")
    return None


def parse_script_payload(payload: str | dict) -> Msg:
    """A request Msg from a script's JSON payload (protobuf JSON mapping: both key
    spellings, enum names or numbers). Fills a missing msg_id and msg_type."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise PayloadError(f"payload is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PayloadError("payload must be a JSON object (a USP Msg)")
    msg = Msg()
    try:
        json_format.ParseDict(payload, msg)
    except json_format.ParseError as exc:
        raise PayloadError(f"payload is not a USP Msg: {exc}") from None
    kind = request_kind(msg)
    if kind is None:
        raise PayloadError("payload has no body.request (e.g. body.request.get)")
    if kind not in SCRIPT_REQUESTS:
        raise PayloadError(f"a script cannot send a {kind} request to an agent")
    expected_type = REQUESTS[kind][0]
    if msg.header.msg_type == MsgType.ERROR:  # 0: left out by the script
        msg.header.msg_type = expected_type
    elif msg.header.msg_type != expected_type:
        raise PayloadError(
            f"header.msg_type {MsgType.Name(msg.header.msg_type)} does not match "
            f"the body's {kind} request (expected {MsgType.Name(expected_type)})"
        )
    if not msg.header.msg_id:
        msg.header.msg_id = new_msg_id()
    return msg


def request(kind: str, msg_id: str | None = None, **fields: Any) -> Msg:
    """A request Msg: ``request("get", param_paths=["Device."], max_depth=1)``."""
    msg = Msg()
    msg.header.msg_id = msg_id or new_msg_id()
    msg.header.msg_type = REQUESTS[kind][0]
    json_format.ParseDict(fields, getattr(msg.body.request, kind))
    return msg


def response_to(req: Msg, kind: str) -> tuple[Msg, Any]:
    """An empty response Msg to ``req`` and its response body to fill."""
    msg = Msg()
    msg.header.msg_id = req.header.msg_id
    msg.header.msg_type = REQUESTS[kind][1]
    body = getattr(msg.body.response, REQUESTS[kind][2])
    body.SetInParent()
    return msg, body


def error_to(req: Msg, code: int, message: str, param_errs: list[tuple[str, int, str]] = ()) -> Msg:
    """A USP Error Msg answering ``req``."""
    msg = Msg()
    msg.header.msg_id = req.header.msg_id
    msg.header.msg_type = MsgType.ERROR
    msg.body.error.err_code = code
    msg.body.error.err_msg = message
    for path, err_code, err_msg in param_errs:
        msg.body.error.param_errs.add(param_path=path, err_code=err_code, err_msg=err_msg)
    return msg


def notify_resp(notify_msg: Msg) -> Msg:
    """The NotifyResp a controller sends when a Notify asks for one (send_resp)."""
    msg, body = response_to(notify_msg, "notify")
    body.subscription_id = notify_msg.body.request.notify.subscription_id
    return msg


def msg_to_dict(msg: Any) -> dict:
    """A protobuf message as a JSON-ready dict with the .proto field names."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)
