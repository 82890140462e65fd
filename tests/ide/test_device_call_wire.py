"""A stored run's device calls over REST: the timeline's list and one call
opened to its request and answer as on the wire (CWMP XML, USP JSON)."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from oktoscripts.runs.models import Run

GPV = {
    "method": "GetParameterValues",
    "names": ["Device.DeviceInfo.SerialNumber"],
    "values": [],
    "object_name": "",
    "path": "",
    "next_level": False,
    "parameter_key": "",
}
FAULT = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    "<soap:Fault><faultstring>CWMP fault</faultstring></soap:Fault></soap:Body></soap:Envelope>"
)
SERIAL = {"Device.DeviceInfo.SerialNumber": "S1"}
USP_GET = {"request": {"get": {"param_paths": ["Device.WiFi.SSID.1.SSID"]}}}


@pytest.fixture
def run(db):
    t0 = 1_800_000_000.0
    calls = [
        {"name": "send_cwmp_message", "target": "CPE1", "latency_s": 0.012, "ok": True,
         "line": 2, "at": t0 + 0.1, "seq": 1, "recorded": 0},
        {"name": "send_cwmp_message", "target": "CPE1", "latency_s": 0.02, "ok": False,
         "line": 3, "at": t0 + 0.2, "seq": 3, "recorded": 1},
        {"name": "send_usp_message", "target": "os::A", "latency_s": 0.03, "ok": True,
         "line": 5, "at": t0 + 0.3, "seq": 4, "recorded": 2},
        {"name": "send_cwmp_message", "target": "CPE2", "latency_s": 0.01, "ok": True,
         "line": 6, "at": t0 + 0.4, "seq": 5, "recorded": None},
    ]  # fmt: skip
    recording = [
        {"protocol": "cwmp", "target": "CPE1", "line": 2, "at": t0 + 0.1, "latency_s": 0.012,
         "request": GPV, "answer": {"ok": True, "result": SERIAL}},
        {"protocol": "cwmp", "target": "CPE1", "line": 3, "at": t0 + 0.2, "latency_s": 0.02,
         "request": GPV, "answer": {"ok": False, "error": {"error_code": "9005",
                                                            "raw_response": FAULT}}},
        {"protocol": "usp", "target": "os::A", "line": 5, "at": t0 + 0.3, "latency_s": 0.03,
         "request": USP_GET, "header": {"msg_id": "m-17", "msg_type": "GET"},
         "answer": {"Device.WiFi.SSID.1.SSID": "home"}},
    ]  # fmt: skip
    return Run.objects.create(
        script_name="calls",
        code="--",
        started_by="user",
        status="succeeded",
        finished=timezone.now(),
        metrics={"device_calls": calls, "recording": {"calls": recording, "truncated": False}},
    )


def test_the_timeline_lists_each_call_with_device_rpc_and_line(client_for, run):
    body = client_for("viewer").get(f"/api/runs/{run.pk}/calls").json()
    assert body["final"] is True and body["truncated"] is False
    shown = [
        (c["n"], c["seq"], c["target"], c["method"], c["line"], c["ok"]) for c in body["calls"]
    ]
    assert shown == [
        (1, 1, "CPE1", "GetParameterValues", 2, True),
        (2, 3, "CPE1", "GetParameterValues", 3, False),
        (3, 4, "os::A", "Get", 5, True),
        (4, 5, "CPE2", None, 6, True),
    ]
    assert [c["recorded"] for c in body["calls"]] == [True, True, True, False]


def test_a_cwmp_call_opens_to_its_soap_request_and_the_answer(client_for, run):
    client = client_for("viewer")
    call = client.get(f"/api/runs/{run.pk}/calls/1").json()
    request = call["wire"]["request"]
    assert request["format"] == "xml"
    assert "<cwmp:GetParameterValues>" in request["text"]
    assert "<string>Device.DeviceInfo.SerialNumber</string>" in request["text"]
    answer = call["wire"]["answer"]
    assert answer["format"] == "json" and json.loads(answer["text"])["result"] == SERIAL
    # A fault: the CPE's own XML.
    fault = client.get(f"/api/runs/{run.pk}/calls/3").json()["wire"]["answer"]
    assert fault["format"] == "xml" and "<faultstring>CWMP fault</faultstring>" in fault["text"]


def test_a_usp_call_opens_to_its_message_as_json(client_for, run):
    call = client_for("viewer").get(f"/api/runs/{run.pk}/calls/4").json()
    sent = json.loads(call["wire"]["request"]["text"])
    assert sent == {"header": {"msg_id": "m-17", "msg_type": "GET"}, "body": USP_GET}
    assert json.loads(call["wire"]["answer"]["text"]) == {"Device.WiFi.SSID.1.SSID": "home"}


def test_calls_without_a_recording_or_line_say_so(client_for, run):
    client = client_for("viewer")
    unrecorded = client.get(f"/api/runs/{run.pk}/calls/5").json()
    assert unrecorded["wire"] is None and "not recorded" in unrecorded["why"]
    # Line 2 is no call's line.
    assert client.get(f"/api/runs/{run.pk}/calls/2").status_code == 404


def test_only_readers_see_device_calls(client_for, run):
    assert client_for("nobody").get(f"/api/runs/{run.pk}/calls").status_code == 403
    assert client_for("nobody").get(f"/api/runs/{run.pk}/calls/1").status_code == 403


def test_a_replay_opens_its_calls_to_the_recording_that_answered_them(client_for, run):
    replay = Run.objects.create(
        script_name="calls",
        code="--",
        started_by="user",
        status="succeeded",
        mode="replay",
        replay_of=run,
        metrics={
            "device_calls": [
                {"name": "send_usp_message", "target": "os::A", "latency_s": 0.0001,
                 "ok": True, "line": 5, "at": 1_800_000_001.0, "seq": 2, "recorded": 2},
            ],
            "replay": {"answered": 1, "recorded": 3, "diverged": None},
        },
    )  # fmt: skip
    client = client_for("viewer")
    listed = client.get(f"/api/runs/{replay.pk}/calls").json()["calls"]
    assert [(c["method"], c["recorded"]) for c in listed] == [("Get", True)]
    call = client.get(f"/api/runs/{replay.pk}/calls/2").json()
    assert json.loads(call["wire"]["answer"]["text"]) == {"Device.WiFi.SSID.1.SSID": "home"}
