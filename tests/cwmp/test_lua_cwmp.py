"""The CWMP functions of the Lua API, end to end: Lua -> NATS -> ACS -> simulated CPE."""

import asyncio

import pytest

from oktoscripts.bindings.services import Services
from oktoscripts.devices.registry import DeviceRegistry
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun


async def _booted(fleet, count=None):
    for _ in range(200):
        if fleet.stats.sessions_ok >= (count or len(fleet.cpes)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("CPEs did not complete their first session")


@pytest.fixture
def services(nc, mongo_db):
    return Services(nats=nc, mongo=mongo_db, devices=DeviceRegistry(mongo_db))


async def run_lua(source, services, *, wall=30.0, args=None, on_status=None):
    run = LuaRun(
        source,
        services=services,
        args=args or {},
        limits=Limits(wall_seconds=wall),
        on_status=on_status,
    )
    return await run.run(), run


FIVE_RPCS = r"""
local sn = args.serial
local r = {}
-- 0 GetParameterValues: a bare RPC element with an undeclared cwmp: prefix
local gpv = send_cwmp_message(sn, [[<cwmp:GetParameterValues><ParameterNames>
  <string>Device.DeviceInfo.SerialNumber</string><string>Device.WiFi.SSID.1.SSID</string>
  </ParameterNames></cwmp:GetParameterValues>]], 0)
r.gpv_serial = gpv["Device.DeviceInfo.SerialNumber"]
r.gpv_bad = send_cwmp_message(sn, [[<cwmp:GetParameterValues><ParameterNames>
  <string>Device.Nope</string></ParameterNames></cwmp:GetParameterValues>]], 0)
-- 1 SetParameterValues: a whole envelope
r.spv = send_cwmp_message(sn, [[<soapenv:Envelope
  xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soapenv:Body><cwmp:SetParameterValues>
  <ParameterList><ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name>
  <Value xsi:type="xsd:string">from-lua</Value></ParameterValueStruct></ParameterList>
  <ParameterKey>k1</ParameterKey></cwmp:SetParameterValues></soapenv:Body></soapenv:Envelope>]], 1)
r.spv_bad = send_cwmp_message(sn, [[<cwmp:SetParameterValues><ParameterList>
  <ParameterValueStruct><Name>Device.WiFi.Radio.1.Channel</Name>
  <Value xsi:type="xsd:unsignedInt">-3</Value></ParameterValueStruct></ParameterList>
  </cwmp:SetParameterValues>]], 1)
-- 2 AddObject
r.add = send_cwmp_message(sn, [[<cwmp:AddObject><ObjectName>Device.NAT.PortMapping.</ObjectName>
  <ParameterKey></ParameterKey></cwmp:AddObject>]], 2)
r.add_bad = send_cwmp_message(sn, [[<cwmp:AddObject><ObjectName>Device.DeviceInfo.</ObjectName>
  </cwmp:AddObject>]], 2)
-- 3 DeleteObject
r.del = send_cwmp_message(sn, "<cwmp:DeleteObject><ObjectName>Device.NAT.PortMapping." ..
  r.add.instance_number .. ".</ObjectName></cwmp:DeleteObject>", 3)
r.del_bad = send_cwmp_message(sn, [[<cwmp:DeleteObject><ObjectName>Device.NAT.PortMapping.99.
  </ObjectName></cwmp:DeleteObject>]], 3)
-- 4 GetParameterNames
local names = send_cwmp_message(sn, [[<cwmp:GetParameterNames>
  <ParameterPath>Device.DeviceInfo.</ParameterPath><NextLevel>true</NextLevel>
  </cwmp:GetParameterNames>]], 4)
r.gpn_count = #names
r.gpn_first = names[1]
r.gpn_bad = send_cwmp_message(sn, [[<cwmp:GetParameterNames>
  <ParameterPath>Device.Nothing.</ParameterPath><NextLevel>false</NextLevel>
  </cwmp:GetParameterNames>]], 4)
-- inside pcall too
local ok, again = pcall(send_cwmp_message, sn, [[<cwmp:GetParameterValues><ParameterNames>
  <string>Device.WiFi.SSID.1.SSID</string></ParameterNames></cwmp:GetParameterValues>]], 0)
r.pcall_ok, r.ssid_after = ok, again["Device.WiFi.SSID.1.SSID"]
return r
"""


async def test_five_rpcs_success_and_fault(fleet_factory, services):
    fleet = await fleet_factory(1, data_model="TR-181")
    await _booted(fleet)
    cpe = fleet.cpes[0]
    outcome, _ = await run_lua(FIVE_RPCS, services, args={"serial": cpe.serial})
    assert outcome.status == "succeeded", outcome.error
    r = outcome.result
    assert r["gpv_serial"] == cpe.serial
    assert r["gpv_bad"]["error_code"] == "9005"
    assert r["gpv_bad"]["error_message"].startswith("Invalid parameter name")
    assert "<FaultCode>9005</FaultCode>" in r["gpv_bad"]["raw_response"]
    assert r["spv"] is True
    assert r["spv_bad"]["error_code"] == "9003"
    assert r["spv_bad"]["parameter_faults"] == [
        {
            "parameter_name": "Device.WiFi.Radio.1.Channel",
            "fault_code": "9007",
            "fault_string": "Invalid parameter value",
        }
    ]
    assert r["add"] == {"instance_number": 1, "status": 0}
    assert r["add_bad"]["error_code"] == "9005"
    assert r["del"] is True
    assert r["del_bad"]["error_code"] == "9005"
    assert r["gpn_count"] == 9 and r["gpn_first"].startswith("Device.DeviceInfo.")
    assert r["gpn_bad"]["error_code"] == "9005"
    assert r["pcall_ok"] is True and r["ssid_after"] == "from-lua"
    calls = outcome.metrics["device_calls"]
    assert len(calls) == 11
    assert all(c["name"] == "send_cwmp_message" and c["target"] == cpe.serial for c in calls)
    assert [c["ok"] for c in calls][:2] == [True, False]


@pytest.mark.parametrize(
    "call, message",
    [
        (
            'send_cwmp_message("SN1", "<x/>", "x")',
            'send_cwmp_message: argument #3 (message type) must be an integer 0-12, got "x"',
        ),
        (
            'send_cwmp_message("SN1", "<x/>")',
            "send_cwmp_message: argument #3 (message type) must be an integer 0-12, got nil",
        ),
        (
            'send_cwmp_async_message("SN1", "<x/>", 13)',
            "send_cwmp_async_message: argument #3 (message type) must be an integer 0-12, got 13",
        ),
        (
            'send_cwmp_message("", "<x/>", 0)',
            'send_cwmp_message: argument #1 (serial) must be a non-empty string, got ""',
        ),
        (
            'send_cwmp_message("SN1", 5, 0)',
            "send_cwmp_message: argument #2 (xml payload) must be a string, got 5",
        ),
        (
            'send_cwmp_message("SN1", "<cwmp:AddObject/>", 0)',
            "send_cwmp_message: argument #2 (xml payload) must be a GetParameterValues request",
        ),
        (
            'send_cwmp_message("SN1", "<cwmp:Download><FileType>1 Firmware Upgrade Image"'
            ' .. "</FileType></cwmp:Download>", 7)',
            "send_cwmp_message: argument #2 (xml payload) must be a Download request "
            "(Download needs URL)",
        ),
        (
            'listen_to_cwmp_event("1", "*")',
            "listen_to_cwmp_event: argument #3 (callback) must be a function, got nil",
        ),
        (
            'listen_to_cwmp_event("1", "*", function() end, 0)',
            "listen_to_cwmp_event: argument #4 (parallel) must be an integer >= 1, got 0",
        ),
    ],
)
async def test_argument_errors(call, message, services):
    outcome, _ = await run_lua(f"local x = 1\n{call}\n", services)
    assert outcome.status == "failed"
    assert message in outcome.error.message
    assert outcome.error.line == 2


async def test_unknown_device_gives_404_table(acs, services):
    outcome, _ = await run_lua(
        'return send_cwmp_message("NOPE-1", "<cwmp:GetParameterValues><ParameterNames>'
        '<string>Device.</string></ParameterNames></cwmp:GetParameterValues>", 0)',
        services,
    )
    assert outcome.result["error_code"] == "404"


async def test_listener_parallel_3_gets_every_event_once(fleet_factory, services):
    fleet = await fleet_factory(4, run=False)
    statuses = []
    script = r"""
    seen = {}
    listen_to_cwmp_event("*", "*", function(ev)
      sleep(0.05)  -- slower than the events arrive: they queue, none is lost
      print(ev.serial_number .. " " .. ev.event .. " " .. ev.event_name .. " " ..
            ev.command_key)
    end, 3)
    """
    lines = []
    run = LuaRun(
        script,
        services=services,
        limits=Limits(wall_seconds=60),
        on_status=statuses.append,
        on_output=lines.append,
    )
    task = asyncio.ensure_future(run.run())
    for _ in range(100):
        if "listening" in statuses:
            break
        await asyncio.sleep(0.05)
    assert "listening" in statuses
    await asyncio.gather(*(c.session() for c in fleet.cpes))  # 4 x (BOOTSTRAP, BOOT)
    fleet.cpes[0].complete_transfer("dl-7")  # 7 TRANSFER COMPLETE + M Download dl-7
    await fleet.cpes[0].session()
    expected = {f"{c.serial} {n}" for c in fleet.cpes for n in ("0 BOOTSTRAP ", "1 BOOT ")}
    expected |= {
        f"{fleet.cpes[0].serial} 7 TRANSFER COMPLETE ",
        f"{fleet.cpes[0].serial} M Download M Download dl-7",
    }
    for _ in range(200):
        printed = [line.text for line in lines if line.stream == "stdout"]
        if len(printed) >= len(expected):
            break
        await asyncio.sleep(0.05)
    run.cancel()
    await task
    printed = [line.text for line in lines if line.stream == "stdout"]
    # 8 boot events + 2 from the Inform; the TransferComplete RPC in the same
    # session as its event adds none
    assert sorted(printed) == sorted(expected)


async def test_listener_filters(fleet_factory, services):
    fleet = await fleet_factory(2, run=False)
    statuses = []
    target = fleet.cpes[1].serial
    script = f"""
    listen_to_cwmp_event("1 BOOT", "{target}", function(ev) print("a " .. ev.event) end)
    listen_to_cwmp_event("0", function(ev) print("b " .. ev.serial_number) end)
    listen_to_cwmp_event(function(ev) print("c " .. ev.event) end)
    """
    lines = []
    run = LuaRun(
        script,
        services=services,
        limits=Limits(wall_seconds=60),
        on_status=statuses.append,
        on_output=lines.append,
    )
    task = asyncio.ensure_future(run.run())
    for _ in range(100):
        if "listening" in statuses:
            break
        await asyncio.sleep(0.05)
    await asyncio.gather(*(c.session() for c in fleet.cpes))
    for _ in range(100):
        if len([x for x in lines if x.stream == "stdout"]) >= 7:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    run.cancel()
    await task
    printed = sorted(line.text for line in lines if line.stream == "stdout")
    assert printed == sorted(
        ["a 1", f"b {fleet.cpes[0].serial}", f"b {target}", "c 0", "c 1", "c 0", "c 1"]
    )


async def test_refresh_device_parameters(fleet_factory, services, mongo_db):
    import oktoscripts.bindings.devices  # noqa: F401 - the dispatcher's binding

    fleet = await fleet_factory(2)
    await _booted(fleet)
    tr181, tr098 = fleet.cpes
    script = f"""
    return {{refresh_device_parameters("{tr181.serial}"),
             refresh_device_parameters("{tr098.serial}"),
             get_device("{tr098.serial}").params}}
    """
    outcome, _ = await run_lua(script, services)
    assert outcome.status == "succeeded", outcome.error
    ok181, ok098, params = outcome.result
    assert ok181 is True and ok098 is True
    wan = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1."
    assert params[wan + "Username"] == tr098.dm.value(wan + "Username")
    assert params[wan + "ExternalIPAddress"].startswith("100.")
    assert params[wan + "MACAddress"].startswith("02:00:")
    assert params["InternetGatewayDevice.DeviceInfo.SerialNumber"] == tr098.serial
    doc = mongo_db.devices.find_one({"serial": tr181.serial})
    stored = {p["path"]: p["value"] for p in doc["params"]}
    assert stored["Device.PPP.Interface.1.Username"] == tr181.dm.value(
        "Device.PPP.Interface.1.Username"
    )
    assert stored["Device.Ethernet.Interface.1.MACAddress"].startswith("02:00:")


async def test_refresh_device_parameters_prints_one_trace_line(fleet_factory, services):
    """One call, one "call" line (and one device call in the metrics), also when
    the CPE faults on a path it lacks and is asked path by path."""
    import oktoscripts.bindings.devices  # noqa: F401 - the dispatcher's binding
    from oktoscripts.lua.limits import Limits

    fleet = await fleet_factory(1, quirk_no_partial_gpv=True)
    await _booted(fleet)
    serial = fleet.cpes[0].serial
    lines = []
    run = LuaRun(
        "return refresh_device_parameters(args.sn)",
        services=services,
        args={"sn": serial},
        limits=Limits(wall_seconds=30),
        on_output=lines.append,
    )
    outcome = await run.run()
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result is True
    traced = [line.text for line in lines if line.stream == "call"]
    assert len(traced) == 1 and traced[0].startswith(f"refresh_device_parameters {serial}:")
    assert [c["name"] for c in outcome.metrics["device_calls"]] == ["refresh_device_parameters"]


async def test_a_deleted_device_is_unknown_at_once_and_not_woken(fleet_factory, services):
    """The ACS caches connection-request details for 30 s: a device deleted
    meanwhile still answers 404 like any unknown device, its CPE is not woken
    and so not registered again."""
    fleet = await fleet_factory(1)
    await _booted(fleet)
    serial = fleet.cpes[0].serial
    gpv = (
        "<cwmp:GetParameterValues><ParameterNames><string>Device.DeviceInfo.SerialNumber"
        "</string></ParameterNames></cwmp:GetParameterValues>"
    )
    script = "return send_cwmp_message(args.sn, args.gpv, 0)"
    before, _ = await run_lua(script, services, args={"sn": serial, "gpv": gpv})
    assert len(before.result) == 1, before.result  # the ACS cached what it needs
    # Deleted as the IDE or REST API does it, from another process's registry.
    assert await asyncio.to_thread(services.devices.delete, serial)
    after, _ = await run_lua(script, services, args={"sn": serial, "gpv": gpv})
    assert after.status == "succeeded", after.error
    assert after.result["error_code"] == "404", after.result
    woken = fleet.stats.connection_requests
    await asyncio.sleep(1.0)
    assert fleet.stats.connection_requests == woken
    assert await asyncio.to_thread(services.devices.get, serial) is None


async def test_a_cpe_that_accepts_the_connection_request_but_never_calls(
    fleet_factory, services, acs_config
):
    """The script is not held for the 120 s of a synchronous call: it gets a
    "408" naming the step that failed once the session timeout (5 s here) passed."""
    import time

    fleet = await fleet_factory(1, quirk_ignore_connection_requests=True)
    await _booted(fleet)
    started = time.monotonic()
    outcome, _ = await run_lua(
        "return send_cwmp_message(args.sn, args.gpv, 0)",
        services,
        wall=60,
        args={
            "sn": fleet.cpes[0].serial,
            "gpv": "<cwmp:GetParameterValues><ParameterNames><string>Device.DeviceInfo."
            "SerialNumber</string></ParameterNames></cwmp:GetParameterValues>",
        },
    )
    took = time.monotonic() - started
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["error_code"] == "408", outcome.result
    assert (
        "accepted the connection request but opened no session" in (outcome.result["error_message"])
    )
    assert fleet.stats.connection_requests >= 1
    assert acs_config.session_timeout <= took < acs_config.session_timeout + 5
