"""Debugging a script that talks to a simulated CPE: a breakpoint after
send_cwmp_message, stepping over a device call, the call's request and answer
shown while paused."""

import asyncio

import pytest

from oktoscripts.bindings.services import Services
from oktoscripts.devices.registry import DeviceRegistry
from oktoscripts.lua.debugger import DebugSession
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun

from .test_lua_cwmp import _booted

SCRIPT = """local sn = args.serial
local ssid = send_cwmp_message(sn, [[<cwmp:GetParameterValues><ParameterNames>
  <string>Device.WiFi.SSID.1.SSID</string></ParameterNames></cwmp:GetParameterValues>]], 0)
local value = ssid["Device.WiFi.SSID.1.SSID"]
return value
"""


@pytest.fixture
def services(nc, mongo_db):
    return Services(nats=nc, mongo=mongo_db, devices=DeviceRegistry(mongo_db))


@pytest.mark.parametrize("runtime", ["luajit", "lua51"])
async def test_step_over_a_device_call_and_see_its_answer(fleet_factory, services, runtime):
    fleet = await fleet_factory(1, data_model="TR-181")
    await _booted(fleet)
    cpe = fleet.cpes[0]
    pauses: asyncio.Queue = asyncio.Queue()
    session = DebugSession(
        on_event=lambda e: pauses.put_nowait(e) if e["event"] == "paused" else None
    )
    run = LuaRun(
        SCRIPT,
        services=services,
        args={"serial": cpe.serial},
        runtime=runtime,
        limits=Limits(wall_seconds=30),
        debug=session,
    )
    task = asyncio.ensure_future(run.run())
    session.configure([{"line": 2}])
    pause = await asyncio.wait_for(pauses.get(), 20)
    assert pause["line"] == 2 and pause["calls"] == []
    session.resume("over")
    pause = await asyncio.wait_for(pauses.get(), 30)
    assert pause["line"] == 4
    (call,) = pause["calls"]
    assert call["name"] == "send_cwmp_message" and call["target"] == cpe.serial and call["ok"]
    assert "Device.WiFi.SSID.1.SSID" in call["request"]
    assert "Device.WiFi.SSID.1.SSID" in call["answer"]
    scopes = await session.scopes(1)
    local = await session.variables(scopes[0]["ref"])
    ssid = next(v for v in local["items"] if v["name"] == "ssid")
    inside = await session.variables(ssid["ref"])
    assert [v["name"] for v in inside["items"]] == ["Device.WiFi.SSID.1.SSID"]
    session.resume("continue")
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status == "succeeded" and isinstance(outcome.result, str)
