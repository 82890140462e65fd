"""A CWMP device twin, against the real ACS over real sockets: snapshotted from
a simulated CPE, it answers every RPC as its original does; writes change the
twin only; unknown paths fault with 9005; reset and delete."""

from __future__ import annotations

import asyncio

from oktoscripts.cwmp import client
from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.twins import store

from .conftest import until

# Values that differ between a device and its twin by nature: where each is reached,
# the connection-request login the ACS gave each, and the time since each booted.
PER_DEVICE = (
    "ManagementServer.ConnectionRequestURL",
    "ManagementServer.URL",
    "ManagementServer.ConnectionRequestUsername",
    "ManagementServer.ConnectionRequestPassword",
    "DeviceInfo.UpTime",
)


async def _tree(nc, serial):
    names = await client.call(
        nc, serial, RpcRequest("GetParameterNames", path="", details=True), timeout_s=15
    )
    assert names["ok"], names
    leaves = [n for n in names["result"] if not n.endswith(".")]
    values = await client.call(
        nc, serial, RpcRequest("GetParameterValues", names=leaves, details=True), timeout_s=15
    )
    assert values["ok"], values
    return names, values


def _comparable(values):
    return {n: v for n, v in values.items() if not n.endswith(PER_DEVICE)}


async def _twin_of(mongo_db, host, serial):
    twin = await asyncio.to_thread(store.request, mongo_db, serial, by="test")
    await host.step()
    doc = await asyncio.to_thread(store.get, mongo_db, twin["_id"])
    assert doc["state"] == "running", doc
    await until(lambda: (mongo_db.devices.find_one({"_id": twin["_id"]}) or {}).get("status") == 2)
    return twin["_id"]


async def test_twin_answers_like_its_original_and_only_itself_changes(
    fleet_factory, host_factory, mongo_db, nc, url
):
    fleet = await fleet_factory(1, data_model="TR-181")
    original = fleet.cpes[0]
    await until(lambda: fleet.stats.sessions_ok >= 1)
    host = host_factory(acs_url=url)
    serial = await _twin_of(mongo_db, host, original.serial)
    assert serial == original.serial + "~twin"

    device = mongo_db.devices.find_one({"_id": serial})
    assert device["twin"] == {"of": original.serial, "snapshot": 1}
    assert device["vendor"] and device["product_class"] == "Router"

    names, values = await _tree(nc, original.serial)
    twin_names, twin_values = await _tree(nc, serial)
    assert twin_names["result"] == names["result"]
    assert twin_names["writable"] == names["writable"]
    assert twin_values["types"] == values["types"]
    assert _comparable(twin_values["result"]) == _comparable(values["result"])

    ssid = "Device.WiFi.SSID.1.SSID"
    answer = await client.call(
        nc,
        serial,
        RpcRequest("SetParameterValues", values=[(ssid, "twin-net", "string")]),
        timeout_s=15,
    )
    assert answer == {"ok": True, "result": True}
    read = await client.call(
        nc, serial, RpcRequest("GetParameterValues", names=[ssid]), timeout_s=15
    )
    assert read["result"] == {ssid: "twin-net"}
    assert original.dm.value(ssid) != "twin-net"

    unknown = await client.call(
        nc, serial, RpcRequest("GetParameterValues", names=["Device.NoSuch.Thing"]), timeout_s=15
    )
    assert unknown["ok"] is False and unknown["error"]["error_code"] == "9005"

    read_only = await client.call(
        nc,
        serial,
        RpcRequest(
            "SetParameterValues", values=[("Device.DeviceInfo.SerialNumber", "x", "string")]
        ),
        timeout_s=15,
    )
    assert read_only["error"]["error_code"] == "9003"
    assert read_only["error"]["parameter_faults"][0]["fault_code"] == "9008"

    # Instance numbering as on the original: both add PortMapping 1.
    for target in (original.serial, serial):
        added = await client.call(
            nc, target, RpcRequest("AddObject", object_name="Device.NAT.PortMapping."), timeout_s=15
        )
        assert added["ok"] and added["result"]["instance_number"] == 1
    not_a_table = await client.call(
        nc, serial, RpcRequest("AddObject", object_name="Device.DeviceInfo."), timeout_s=15
    )
    assert not_a_table["error"]["error_code"] == "9005"

    await asyncio.to_thread(store.reset, mongo_db, serial)
    await host.step()
    read = await client.call(
        nc, serial, RpcRequest("GetParameterValues", names=[ssid]), timeout_s=15
    )
    assert read["result"] == {ssid: original.dm.value(ssid)}

    await asyncio.to_thread(store.delete, mongo_db, serial)
    await host.step()
    assert serial not in host.running
    assert mongo_db.devices.find_one({"_id": serial}) is None
    gone = await client.call(
        nc, serial, RpcRequest("GetParameterValues", names=[ssid]), timeout_s=5
    )
    assert gone["ok"] is False  # nobody answers for it any more


async def test_twin_of_an_unreachable_device_fails_with_the_reason(
    fleet_factory, host_factory, mongo_db, url
):
    fleet = await fleet_factory(1, data_model="TR-098")
    await until(lambda: fleet.stats.sessions_ok >= 1)
    serial = fleet.cpes[0].serial
    await fleet.stop()  # gone: its connection requests go unanswered
    host = host_factory(acs_url=url)
    twin = await asyncio.to_thread(store.request, mongo_db, serial)
    from oktoscripts.twins import snapshot

    snapshot_timeout = snapshot.CALL_TIMEOUT_S
    snapshot.CALL_TIMEOUT_S = 2.0
    try:
        await host.step()
    finally:
        snapshot.CALL_TIMEOUT_S = snapshot_timeout
    doc = await asyncio.to_thread(store.get, mongo_db, twin["_id"])
    assert doc["state"] == "failed" and "GetParameterNames" in doc["error"]
    device = mongo_db.devices.find_one({"_id": twin["_id"]})
    assert device["status"] == 0 and device["twin"]["of"] == serial  # shown, offline


def test_bad_twin_requests_are_refused_with_the_reason(mongo_db):
    import pytest

    with pytest.raises(store.TwinNotFound, match="no device"):
        store.request(mongo_db, "NOPE-NOT-THERE")
    mongo_db.devices.insert_one(
        {
            "_id": "TW-IS-TWIN",
            "serial": "TW-IS-TWIN",
            "cwmp": {},
            "twin": {"of": "X", "snapshot": 1},
        }
    )
    with pytest.raises(store.TwinError, match="itself a twin"):
        store.request(mongo_db, "TW-IS-TWIN")
    mongo_db.devices.insert_one({"_id": "TW-NO-PROTO", "serial": "TW-NO-PROTO"})
    with pytest.raises(store.TwinError, match="neither CWMP nor USP"):
        store.request(mongo_db, "TW-NO-PROTO")
    mongo_db.devices.insert_one({"_id": "TW-OK", "serial": "TW-OK", "cwmp": {}})
    with pytest.raises(store.TwinError, match="cannot name a twin"):
        store.request(mongo_db, "TW-OK", name="bad/name")
