"""Script payloads to USP Msgs, and USP responses to the shapes scripts get."""

from __future__ import annotations

import pytest

from oktoscripts.usp import messages, records, results
from oktoscripts.usp.messages import PayloadError
from oktoscripts.usp.proto import usp_msg_pb2
from oktoscripts.usp.records import RecordError


def test_both_key_spellings_and_enum_names_or_numbers():
    camel = messages.parse_script_payload(
        '{"header": {"msg_id": "7", "msg_type": "GET"},'
        ' "body": {"request": {"get": {"paramPaths": ["Device."], "maxDepth": 2}}}}'
    )
    snake = messages.parse_script_payload(
        {
            "header": {"msgId": "7", "msgType": 1},
            "body": {"request": {"get": {"param_paths": ["Device."], "max_depth": 2}}},
        }
    )
    assert camel == snake
    assert camel.body.request.get.max_depth == 2


def test_missing_msg_id_and_type_are_filled_and_unique():
    payload = {"body": {"request": {"set": {"update_objs": [{"obj_path": "Device.X."}]}}}}
    first = messages.parse_script_payload(payload)
    second = messages.parse_script_payload(payload)
    assert first.header.msg_type == usp_msg_pb2.Header.SET
    assert first.header.msg_id and first.header.msg_id != second.header.msg_id


@pytest.mark.parametrize(
    "payload, problem",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"body": {"request": {"get": {"no_such_field": 1}}}}, "not a USP Msg"),
        ({"header": {"msg_type": "GET"}}, "no body.request"),
        ({"header": {"msg_type": "SET"}, "body": {"request": {"get": {}}}}, "does not match"),
        ({"body": {"request": {"notify": {}}}}, "cannot send a notify"),
    ],
)
def test_bad_payloads_say_what_is_wrong(payload, problem):
    with pytest.raises(PayloadError, match=problem):
        messages.parse_script_payload(payload)


def test_records_round_trip_and_reject_garbage():
    msg = messages.request("get", "m1", param_paths=["Device."])
    data = records.encode_msg_record(msg, to_id="os::agent", from_id="os::ctl")
    record = records.decode_record(data)
    assert (record.to_id, record.from_id) == ("os::agent", "os::ctl")
    assert records.decode_record_msg(record) == msg
    for garbage in (b"\xff\xff\xff", b"", b"\x0a\x05abc"):
        with pytest.raises(RecordError):
            records.decode_record(garbage)


def _response(kind, fill):
    msg, body = messages.response_to(messages.request(kind, "r1"), kind)
    fill(body)
    return msg


def test_get_result_is_full_paths_to_strings_and_a_failed_path_is_an_error_table():
    def fill(body):
        r = body.req_path_results.add(requested_path="Device.WiFi.SSID.*.SSID")
        r.resolved_path_results.add(
            resolved_path="Device.WiFi.SSID.1.", result_params={"SSID": "a"}
        )
        body.req_path_results.add(requested_path="Device.Nope.", err_code=7026, err_msg="bad")

    assert (
        results.script_result(
            "get", _response("get", lambda b: b.req_path_results.add(requested_path="Device.X.*."))
        )
        == {}
    )
    value = results.script_result("get", _response("get", fill))
    assert value == {
        "error_code": "7026",
        "error_message": "bad",
        "param_errs": [{"param_path": "Device.Nope.", "err_code": "7026", "err_msg": "bad"}],
    }


def test_usp_error_message_becomes_error_table_with_param_errs():
    error = messages.error_to(
        messages.request("set", "e1"),
        7004,
        "Invalid arguments",
        [("Device.A.B", 7012, "Invalid value")],
    )
    assert results.script_result("set", error) == {
        "error_code": "7004",
        "error_message": "Invalid arguments",
        "param_errs": [
            {"param_path": "Device.A.B", "err_code": "7012", "err_msg": "Invalid value"}
        ],
    }


def test_operate_results():
    def sync(body):
        r = body.operation_results.add(executed_command="Device.Reboot()")
        r.req_output_args.output_args["Status"] = "ok"

    def asynchronous(body):
        body.operation_results.add(executed_command="Device.X()", req_obj_path="Device.R.1.")

    assert results.script_result("operate", _response("operate", sync)) == {"Status": "ok"}
    assert results.script_result("operate", _response("operate", asynchronous)) == {
        "req_obj_path": "Device.R.1."
    }


def test_a_response_of_the_wrong_kind_is_an_error():
    value = results.script_result("get", _response("set", lambda b: None))
    assert value["error_code"] == "500"
