"""The built-in demo twins, started from the snapshots shipped with the project
(the simulator's own CPE, a TR-181 and a TR-098 home gateway), against the real
ACS: each answers GetParameterNames and GetParameterValues with its file's
names, types and writability, in the CWMP version its file names; a write to
a writable parameter sticks, a read-only one faults 9008, an unknown path 9005."""

from __future__ import annotations

import asyncio

import pytest

from oktoscripts.cwmp import client
from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.twins import demos, store

from .test_cwmp_twin import PER_DEVICE, _tree

SHIPPED = demos.shipped()
# And the key of the ACS's own SetParameterValues (it sets a connection-request login).
PER_TWIN = (*PER_DEVICE, "ManagementServer.ParameterKey")


def test_the_shipped_snapshots_are_the_three_demo_devices():
    assert sorted(SHIPPED) == ["gateway-tr098", "gateway-tr181", "simulator-tr181"]
    for content in SHIPPED.values():
        assert "tools/twin_snapshots.py" in content["about"]
    tr181 = {p["n"] for p in SHIPPED["gateway-tr181"]["params"]}
    for wanted in (
        "Device.WiFi.Radio.2.OperatingFrequencyBand",
        "Device.WiFi.SSID.1.SSID",
        "Device.WiFi.AccessPoint.1.Security.KeyPassphrase",
        "Device.Hosts.Host.3.HostName",
        "Device.IP.Interface.2.IPv4Address.1.IPAddress",
        "Device.DHCPv4.Server.Pool.1.MinAddress",
        "Device.Ethernet.Interface.4.Stats.BytesSent",
        "Device.DeviceInfo.FirmwareImage.2.Version",
        "Device.ManagementServer.PeriodicInformInterval",
    ):
        assert wanted in tr181, wanted
    tr098 = {p["n"] for p in SHIPPED["gateway-tr098"]["params"]}
    for wanted in (
        "InternetGatewayDevice.LANDevice.1.WLANConfiguration.2.SSID",
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
        "ExternalIPAddress",
        "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
        "InternetGatewayDevice.ManagementServer.URL",
    ):
        assert wanted in tr098, wanted


@pytest.mark.parametrize("name", sorted(SHIPPED))
async def test_a_demo_twin_answers_from_its_shipped_snapshot(name, demo_host, mongo_db, nc):
    content = SHIPPED[name]
    serial = content["serial"]
    doc = await asyncio.to_thread(store.get, mongo_db, serial)
    assert doc["source"] == f"demo:{name}" and doc["state"] == "running"
    device = mongo_db.devices.find_one({"_id": serial})
    assert device["twin"]["of"] == f"demo:{name}"
    assert device["cwmp"]["cwmp_ns"] == content["cwmp_ns"]  # the version its file names

    names, values = await _tree(nc, serial)
    expected_w = {o["n"]: o["w"] for o in content["objects"]}
    expected_w.update({p["n"]: p["w"] for p in content["params"]})
    assert set(names["result"]) == set(expected_w)
    assert {n: names["writable"][n] for n in expected_w} == expected_w
    assert values["types"] == {p["n"]: p["t"] for p in content["params"]}
    assert {n: v for n, v in values["result"].items() if not n.endswith(PER_TWIN)} == {
        p["n"]: p["v"] for p in content["params"] if not p["n"].endswith(PER_TWIN)
    }

    writable = next(
        p["n"] for p in content["params"] if p["w"] and p["t"] == "string" and "SSID" in p["n"]
    )
    read_only = next(p["n"] for p in content["params"] if not p["w"] and p["t"] == "unsignedInt")
    root = content["root"]

    async def call(request):
        return await client.call(nc, serial, request, timeout_s=15)

    assert await call(
        RpcRequest("SetParameterValues", values=[(writable, "demo-net", "string")])
    ) == {"ok": True, "result": True}
    assert (await call(RpcRequest("GetParameterValues", names=[writable])))["result"] == {
        writable: "demo-net"
    }
    refused = await call(RpcRequest("SetParameterValues", values=[(read_only, "7", "unsignedInt")]))
    assert refused["error"]["error_code"] == "9003"
    assert refused["error"]["parameter_faults"][0]["fault_code"] == "9008"
    bad_type = await call(RpcRequest("SetParameterValues", values=[(writable, "x", "boolean")]))
    assert bad_type["error"]["parameter_faults"][0]["fault_code"] == "9006"
    unknown = await call(RpcRequest("GetParameterValues", names=[root + "NoSuch.Thing"]))
    assert unknown["ok"] is False and unknown["error"]["error_code"] == "9005"
    unknown_names = await call(
        RpcRequest("GetParameterNames", path=root + "NoSuch.", next_level=True)
    )
    assert unknown_names["error"]["error_code"] == "9005"

    # Asking again changes nothing: the same snapshot, the twin left as it is.
    await asyncio.to_thread(demos.ensure, mongo_db)
    again = await asyncio.to_thread(store.get, mongo_db, serial)
    assert (again["snapshot"], again["generation"]) == (doc["snapshot"], doc["generation"])


def test_a_demo_twin_never_takes_a_real_device_or_another_twin(mongo_db):
    shipped = demos.shipped()
    real, taken = shipped["gateway-tr098"]["serial"], shipped["gateway-tr181"]["serial"]
    serials = (real, taken, shipped["simulator-tr181"]["serial"])
    for serial in serials:
        mongo_db[store.TWINS].delete_one({"_id": serial})
        mongo_db.devices.delete_one({"_id": serial})
    mongo_db.devices.insert_one({"_id": real, "serial": real, "cwmp": {}})
    mongo_db[store.TWINS].insert_one({"_id": taken, "source": "LAB-1", "protocol": "cwmp"})
    mongo_db.devices.insert_one({"_id": taken, "serial": taken, "twin": {"of": "LAB-1"}})
    started = demos.ensure(mongo_db)
    assert started == [shipped["simulator-tr181"]["serial"]]
    assert "twin" not in mongo_db.devices.find_one({"_id": real})
    assert mongo_db[store.TWINS].find_one({"_id": taken})["source"] == "LAB-1"
    for serial in serials:
        mongo_db[store.TWINS].delete_one({"_id": serial})
        mongo_db.devices.delete_one({"_id": serial})
