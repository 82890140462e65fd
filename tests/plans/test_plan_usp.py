"""Plan mode over USP, against the real controller and a simulated agent:
Set and Add are planned (the Add's instance predicted), not made; the plan
applies."""

from __future__ import annotations

import pytest

from oktoscripts.runs.gates import Planner
from oktoscripts.scripts import apply

from .conftest import run_lua

SCRIPT = r"""
local eid = args.eid
local set = send_usp_message(eid, {header = {msg_id = "s1", msg_type = "SET"},
  body = {request = {set = {update_objs = {{obj_path = "Device.WiFi.SSID.*.",
    param_settings = {{param = "SSID", value = "usp-planned", required = true}}}}}}}})
local add = send_usp_message(eid, {header = {msg_id = "a1", msg_type = "ADD"},
  body = {request = {add = {create_objs = {{obj_path = "Device.IP.Interface.",
    param_settings = {{param = "Alias", value = "guest"}}}}}}}})
return {set = set, add = add}
"""


@pytest.fixture
async def usp_env(nats_url, mongo_db, mqtt311, mqtt311_url):
    from tests.usp.conftest import start_env, stop_env

    env = await start_env(
        "mqtt-3.1.1", nats_url=nats_url, mongo_db=mongo_db, mqtt_url=mqtt311_url, broker=mqtt311
    )
    yield env
    await stop_env(env)


async def test_usp_plan_then_apply(usp_env):
    agent = await usp_env.start_agent("plan1")
    eid = agent.config.endpoint_id
    planner = Planner()
    outcome = await run_lua(SCRIPT, usp_env.services(), gate=planner, args={"eid": eid})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["set"] == {
        "planned": True,
        "Device.WiFi.SSID.1.SSID": "usp-planned",
        "Device.WiFi.SSID.2.SSID": "usp-planned",
    }
    assert outcome.result["add"][0]["instantiated_path"] == "Device.IP.Interface.3."
    assert "Device.IP.Interface.3." not in agent.dm.objects  # nothing made
    assert agent.dm.values["Device.WiFi.SSID.1.SSID"] != "usp-planned"
    calls = planner.metrics()["plan"]["devices"][eid]["calls"]
    assert [c["method"] for c in calls] == ["set", "add"]
    assert [(c["path"], c["before"], c["checked"]) for c in calls[0]["changes"]] == [
        ("Device.WiFi.SSID.1.SSID", agent.dm.values["Device.WiFi.SSID.1.SSID"], True),
        ("Device.WiFi.SSID.2.SSID", agent.dm.values["Device.WiFi.SSID.2.SSID"], True),
    ]
    assert calls[0]["line"] == 3 and calls[1]["line"] == 6

    code = apply.applier_code(planner.metrics()["plan"], "usp-test", "plan-run")
    applied = await run_lua(code, usp_env.services())
    assert applied.status == "succeeded", applied.error
    assert applied.result["applied"] == {eid: 2}, applied.result
    assert agent.dm.values["Device.WiFi.SSID.1.SSID"] == "usp-planned"
    assert agent.dm.values["Device.IP.Interface.3.Alias"] == "guest"
