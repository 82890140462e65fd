"""The USP schema is compiled by the install and carries TR-369's wire format."""

from __future__ import annotations

from pathlib import Path

from oktoscripts.usp.proto import usp_msg_pb2, usp_record_pb2

PROTO_DIR = Path(__file__).resolve().parents[2] / "oktoscripts" / "usp" / "proto"


def test_generated_modules_come_from_the_checked_in_schema():
    assert (PROTO_DIR / "usp_msg.proto").exists()
    assert Path(usp_msg_pb2.__file__).parent == PROTO_DIR
    assert usp_msg_pb2.DESCRIPTOR.name == "usp_msg.proto"
    assert usp_record_pb2.DESCRIPTOR.package == "usp_record"


def test_field_numbers_are_the_wire_format_of_tr369():
    def number(message, field):
        return message.DESCRIPTOR.fields_by_name[field].number

    assert number(usp_msg_pb2.Get, "param_paths") == 1
    assert number(usp_msg_pb2.Get, "max_depth") == 2
    assert number(usp_msg_pb2.Request, "get_supported_protocol") == 9
    assert number(usp_msg_pb2.Request, "register") == 10
    assert number(usp_msg_pb2.Response, "deregister_resp") == 11
    assert number(usp_msg_pb2.Notify, "on_board_req") == 8
    assert number(usp_record_pb2.Record, "no_session_context") == 7
    assert number(usp_record_pb2.Record, "mqtt_connect") == 10
    assert number(usp_record_pb2.Record, "uds_connect") == 13
    assert usp_msg_pb2.Header.MsgType.Value("DEREGISTER_RESP") == 22


def test_known_bytes_of_a_get_request_decode():
    # Msg{header{msg_id:"1" msg_type:GET} body{request{get{param_paths:"Device."}}}}
    # encoded by hand from the field numbers (fixed32 max_depth absent).
    wire = bytes.fromhex("0a050a01311001120d0a0b0a090a07") + b"Device."
    msg = usp_msg_pb2.Msg.FromString(wire)
    assert msg.header.msg_id == "1"
    assert msg.header.msg_type == usp_msg_pb2.Header.GET
    assert list(msg.body.request.get.param_paths) == ["Device."]
