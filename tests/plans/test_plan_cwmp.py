"""Plan mode over CWMP, against the real ACS and simulated CPEs: reads go to
the device, writes are planned (before, after, line) and not made; the plan
is applied by a second run that refuses a device whose values moved."""

from __future__ import annotations

from oktoscripts.runs.gates import Planner
from oktoscripts.scripts import apply

from .conftest import run_lua, until

SCRIPT = r"""
local sn = args.serial
local ssid = "Device.WiFi.SSID.1.SSID"
local before = send_cwmp_message(sn, "<cwmp:GetParameterValues><ParameterNames>"
  .. "<string>" .. ssid .. "</string></ParameterNames></cwmp:GetParameterValues>", 0)
local set = send_cwmp_message(sn, [[<cwmp:SetParameterValues><ParameterList>
  <ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name>
  <Value xsi:type="xsd:string">planned-net</Value></ParameterValueStruct>
  <ParameterValueStruct><Name>Device.WiFi.Radio.1.Channel</Name>
  <Value xsi:type="xsd:unsignedInt">11</Value></ParameterValueStruct>
  </ParameterList><ParameterKey>k1</ParameterKey></cwmp:SetParameterValues>]], 1)
local added = send_cwmp_message(sn, [[<cwmp:AddObject>
  <ObjectName>Device.NAT.PortMapping.</ObjectName><ParameterKey>k2</ParameterKey>
  </cwmp:AddObject>]], 2)
local port = "Device.NAT.PortMapping." .. added.instance_number .. ".ExternalPort"
local set2 = send_cwmp_message(sn, "<cwmp:SetParameterValues><ParameterList>"
  .. "<ParameterValueStruct><Name>" .. port .. "</Name>"
  .. "<Value xsi:type=\"xsd:unsignedInt\">8080</Value></ParameterValueStruct>"
  .. "</ParameterList><ParameterKey>k3</ParameterKey></cwmp:SetParameterValues>", 1)
return {ssid = before[ssid], set = set, added = added, set2 = set2}
"""


async def test_plan_reads_the_device_and_changes_nothing_then_applies(fleet_factory, services):
    fleet = await fleet_factory(3, data_model="TR-181")
    await until(lambda: fleet.stats.sessions_ok >= 3)
    planner = Planner()
    for cpe in fleet.cpes:
        outcome = await run_lua(SCRIPT, services, gate=planner, args={"serial": cpe.serial})
        assert outcome.status == "succeeded", outcome.error
        assert outcome.result["ssid"] == cpe.dm.value("Device.WiFi.SSID.1.SSID")
        assert outcome.result["set"] is True
        assert outcome.result["added"] == {"instance_number": 1, "status": 0, "planned": True}
        assert outcome.metrics["plan"]["devices"][cpe.serial]["calls"]
    for cpe in fleet.cpes:  # nothing changed on any device
        assert cpe.dm.value("Device.WiFi.SSID.1.SSID") != "planned-net"
        assert "Device.NAT.PortMapping.1.ExternalPort" not in cpe.dm.params
        assert not {"k1", "k2", "k3"} & set(cpe.applied)  # the script's writes: none made
    plan = planner.metrics()["plan"]
    first = plan["devices"][fleet.cpes[0].serial]["calls"]
    assert [c["method"] for c in first] == ["SetParameterValues", "AddObject", "SetParameterValues"]
    assert first[0]["line"] == 6 and first[1]["line"] == 12 and first[2]["line"] == 16
    assert first[0]["changes"][0] == {
        "op": "set",
        "path": "Device.WiFi.SSID.1.SSID",
        "type": "string",
        "checked": True,
        "before": fleet.cpes[0].dm.value("Device.WiFi.SSID.1.SSID"),
        "after": "planned-net",
    }
    assert first[0]["changes"][1]["before"] == "6" and first[0]["changes"][1]["after"] == "11"
    assert first[1]["changes"][0]["after"] == "Device.NAT.PortMapping.1."
    assert first[2]["changes"][0]["path"] == "Device.NAT.PortMapping.1.ExternalPort"
    assert first[2]["changes"][0]["before"] is None  # not on the device yet
    assert apply.summary(plan) == {"devices": 3, "calls": 9, "changes": 12}

    # One device moved on since: the plan's "before" no longer holds there.
    moved = fleet.cpes[2]
    moved.dm.params["Device.WiFi.Radio.1.Channel"].value = "1"
    code = apply.applier_code(plan, "test", "plan-run")
    outcome = await run_lua(code, services)
    assert outcome.status == "succeeded", outcome.error
    report = outcome.result
    assert report["applied"] == {fleet.cpes[0].serial: 3, fleet.cpes[1].serial: 3}
    assert (
        'Device.WiFi.Radio.1.Channel is "1" now, "6" when planned'
        in report["refused"][moved.serial]
    )
    for cpe in fleet.cpes[:2]:
        assert cpe.dm.value("Device.WiFi.SSID.1.SSID") == "planned-net"
        assert cpe.dm.value("Device.NAT.PortMapping.1.ExternalPort") == "8080"
    assert moved.dm.value("Device.WiFi.SSID.1.SSID") != "planned-net"
    assert not {"k1", "k2", "k3"} & set(moved.applied)  # nothing written to the refused one


ACTIONS = r"""
local sn = args.serial
local reboot = send_cwmp_message(sn, "<cwmp:Reboot><CommandKey>planned-reboot</CommandKey>"
  .. "</cwmp:Reboot>", 5)
local download = send_cwmp_message(sn, "<cwmp:Download><CommandKey>fw</CommandKey>"
  .. "<FileType>1 Firmware Upgrade Image</FileType><URL>http://files.example/fw.bin</URL>"
  .. "</cwmp:Download>", 7)
local reset = send_cwmp_message(sn, "<cwmp:FactoryReset/>", 6)
return {reboot = reboot, download = download, reset = reset}
"""


async def test_plan_mode_makes_no_reboot_download_or_factory_reset(fleet_factory, services):
    fleet = await fleet_factory(1, data_model="TR-098")
    await until(lambda: fleet.stats.sessions_ok >= 1)
    cpe = fleet.cpes[0]
    woken = fleet.stats.connection_requests
    planner = Planner()
    outcome = await run_lua(ACTIONS, services, gate=planner, args={"serial": cpe.serial})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {
        "reboot": True,
        "download": {"status": 1, "planned": True},
        "reset": True,
    }
    assert fleet.stats.connection_requests == woken  # the CPE was not even woken
    calls = planner.metrics()["plan"]["devices"][cpe.serial]["calls"]
    assert [c["method"] for c in calls] == ["Reboot", "Download", "FactoryReset"]
    assert calls[1]["changes"][0]["path"] == "http://files.example/fw.bin"
    assert "planned-reboot" in apply.applier_code(planner.metrics()["plan"], "t", "r")
