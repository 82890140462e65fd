"""USP Records: the envelope of every USP Message on an MTP.

The controller uses no-session-context Records with plaintext payloads; it
also understands the MTP connect Records (USP 1.3+) and DisconnectRecord.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from oktoscripts.usp.proto import usp_msg_pb2, usp_record_pb2

USP_VERSION = "1.3"
MAX_RECORD_BYTES = 4 * 1024 * 1024

Record = usp_record_pb2.Record


class RecordError(ValueError):
    """Bytes that are not a usable USP Record (logged and dropped by receivers)."""


def encode_msg_record(msg: usp_msg_pb2.Msg | bytes, *, to_id: str, from_id: str) -> bytes:
    """A serialized no-session-context Record carrying ``msg``."""
    payload = msg if isinstance(msg, bytes) else msg.SerializeToString()
    record = Record(version=USP_VERSION, to_id=to_id, from_id=from_id)
    record.no_session_context.payload = payload
    return record.SerializeToString()


def encode_mqtt_connect(*, to_id: str, from_id: str, v5: bool, topic: str) -> bytes:
    record = Record(version=USP_VERSION, to_id=to_id, from_id=from_id)
    record.mqtt_connect.version = (
        usp_record_pb2.MQTTConnectRecord.V5 if v5 else usp_record_pb2.MQTTConnectRecord.V3_1_1
    )
    record.mqtt_connect.subscribed_topic = topic
    return record.SerializeToString()


def encode_websocket_connect(*, to_id: str, from_id: str) -> bytes:
    record = Record(version=USP_VERSION, to_id=to_id, from_id=from_id)
    record.websocket_connect.SetInParent()
    return record.SerializeToString()


def encode_disconnect(*, to_id: str, from_id: str, reason: str = "", code: int = 0) -> bytes:
    record = Record(version=USP_VERSION, to_id=to_id, from_id=from_id)
    record.disconnect.reason = reason
    record.disconnect.reason_code = code
    return record.SerializeToString()


def decode_record(data: bytes) -> Record:
    """Parse a Record and check what every receiver relies on."""
    if not isinstance(data, bytes | bytearray):
        raise RecordError("a USP Record must be binary")
    if len(data) > MAX_RECORD_BYTES:
        raise RecordError(f"record of {len(data)} bytes is larger than {MAX_RECORD_BYTES}")
    record = Record()
    try:
        record.ParseFromString(bytes(data))
    except DecodeError as exc:
        raise RecordError(f"not a protobuf USP Record: {exc}") from None
    if not record.from_id or not record.to_id:
        raise RecordError("record without from_id or to_id")
    if record.WhichOneof("record_type") is None:
        raise RecordError("record without a record type")
    return record


def decode_record_msg(record: Record) -> usp_msg_pb2.Msg:
    """The Msg inside a no-session-context Record."""
    kind = record.WhichOneof("record_type")
    if kind != "no_session_context":
        raise RecordError(f"expected a no_session_context record, got {kind}")
    if record.payload_security != Record.PLAINTEXT:
        raise RecordError("only plaintext payloads are supported")
    msg = usp_msg_pb2.Msg()
    try:
        msg.ParseFromString(record.no_session_context.payload)
    except DecodeError as exc:
        raise RecordError(f"payload is not a protobuf USP Msg: {exc}") from None
    if not msg.header.msg_id or msg.body.WhichOneof("msg_body") is None:
        raise RecordError("USP Msg without msg_id or body")
    return msg
