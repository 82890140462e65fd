"""The device registry: upserts per protocol, reads, listing, counts, edits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from oktoscripts.devices.documents import OFFLINE, ONLINE
from oktoscripts.devices.registry import DeviceFilter, DeviceRegistry, DeviceUpdate

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def inform(registry: DeviceRegistry, serial: str, now: datetime = T0, **extra):
    fields = dict(
        oui="00AABB",
        product_class="HG8245",
        manufacturer="Huawei",
        model="HG8245H",
        software_version="V3R017",
        hardware_version="HW1",
        data_model="TR-098",
        ip="10.0.0.5",
        periodic_inform_interval=300,
        connection_request_url="http://10.0.0.5:7547/cr",
        connection_request_username="cruser",
        connection_request_password="crpass-secret",
        events=["1 BOOT"],
    )
    fields.update(extra)
    return registry.upsert_cwmp(serial, now=now, **fields)


def test_first_inform_inserts_and_the_next_one_updates(registry):
    assert inform(registry, "SN1").inserted is True
    later = T0 + timedelta(minutes=5)
    assert inform(registry, "SN1", now=later, software_version="V4").inserted is False
    doc = registry.get("SN1")
    assert doc["first_seen"] == T0
    assert doc["last_seen"] == later
    assert doc["version"] == "V4"
    assert doc["cwmp"]["last_events"] == ["1 BOOT"]
    assert doc["status"] == ONLINE


def test_a_protocol_never_loses_what_the_other_one_wrote(registry):
    inform(registry, "DUAL")
    registry.upsert_usp(
        "DUAL",
        vendor="",
        mtp="mqtt",
        mtp_address={"topic": "usp/agent"},
        data_model=None,
        now=T0 + timedelta(seconds=1),
    )
    doc = registry.get("DUAL")
    assert doc["cwmp"]["connection_request"]["url"] == "http://10.0.0.5:7547/cr"
    assert doc["cwmp"]["oui"] == "00AABB"
    assert doc["usp"]["mtps"]["mqtt"]["address"] == {"topic": "usp/agent"}
    assert doc["vendor"] == "Huawei"  # an empty report does not blank a known value
    assert doc["data_model"] == "TR-098"
    registry.upsert_usp("DUAL", mtp="websocket", now=T0 + timedelta(seconds=2))
    table = registry.get_lua("DUAL")
    assert table["cwmp"] is True and table["usp"] is True
    assert table["mtps"] == ["mqtt", "websocket"]


def test_device_table_has_the_lua_api_shape(registry):
    inform(registry, "SHAPE")
    registry.set_params("SHAPE", {"InternetGatewayDevice.DeviceInfo.SoftwareVersion": "V3R017"})
    table = registry.get_lua("SHAPE")
    assert table == {
        "sn": "SHAPE",
        "model": "HG8245H",
        "vendor": "Huawei",
        "version": "V3R017",
        "product_class": "HG8245",
        "alias": "",
        "status": 2,
        "cwmp": True,
        "usp": False,
        "data_model": "TR-098",
        "oui": "00AABB",
        "last_seen": "2026-01-01T12:00:00.000Z",
        "ip": "10.0.0.5",
        "mtps": [],
        "params": {"InternetGatewayDevice.DeviceInfo.SoftwareVersion": "V3R017"},
        "twin": False,
    }


def test_unknown_fields_are_empty_strings(registry):
    registry.upsert(DeviceUpdate("BARE", "usp"), now=T0)
    table = registry.get_lua("BARE")
    for key in ("model", "vendor", "version", "product_class", "alias", "data_model", "oui", "ip"):
        assert table[key] == ""
    assert table["usp"] is True and table["cwmp"] is False
    assert registry.get_lua("NOPE") is None


def test_connection_request_password_is_sealed_but_readable_by_the_acs(registry, mdb):
    inform(registry, "CR1")
    raw = mdb.devices.find_one({"serial": "CR1"})
    assert "crpass-secret" not in repr(raw)
    cr = registry.connection_request("CR1")
    assert (cr.url, cr.username, cr.password) == (
        "http://10.0.0.5:7547/cr",
        "cruser",
        "crpass-secret",
    )
    assert registry.connection_request("NOPE") is None


def test_sealed_password_under_another_secret_key_is_not_returned(registry, settings):
    inform(registry, "CR2")
    settings.SECRET_KEY = "another key entirely"
    cr = registry.connection_request("CR2")
    assert cr.url and cr.password is None


def test_indexes(registry, mdb):
    inform(registry, "SN1")
    keys = {i["name"]: dict(i["key"]) for i in mdb.devices.list_indexes()}
    assert mdb.devices.find_one({"_id": "SN1"})["serial"] == "SN1"  # the serial is the key
    assert keys["status_offline_at"] == {"status": 1, "offline_at": 1}  # lookups and sweeper
    for name in ("vendor", "product_class", "last_seen"):
        assert keys[name] == {name: 1}


def test_indexes_of_earlier_versions_are_replaced(mdb):
    # Each index costs every device write: the ones the compound index
    # replaced must not stay behind in an existing database.
    mdb.devices.create_index("status", name="status")
    mdb.devices.create_index("offline_at", name="offline_at", sparse=True)
    DeviceRegistry(mdb).ensure_indexes()
    names = {i["name"] for i in mdb.devices.list_indexes()}
    assert "status" not in names and "offline_at" not in names
    assert "status_offline_at" in names
    DeviceRegistry(mdb).ensure_indexes()  # idempotent


def test_list_filters_paging_and_counts(registry):
    for i in range(12):
        inform(registry, f"HW{i:02d}", manufacturer="Huawei", product_class="HG")
    for i in range(5):
        registry.upsert_usp(f"os::agent{i}", vendor="Acme", product_class="USPBox", now=T0)
    registry.set_offline("os::agent0", "usp", now=T0)
    registry.set_alias("HW03", "Living room")

    page, total = registry.list(DeviceFilter(vendor="Huawei"), offset=10, limit=5)
    assert total == 12 and [d["serial"] for d in page] == ["HW10", "HW11"]
    _, total = registry.list(DeviceFilter(protocol="usp"))
    assert total == 5
    page, total = registry.list(DeviceFilter(status=OFFLINE))
    assert [d["serial"] for d in page] == ["os::agent0"]
    page, _ = registry.list(DeviceFilter(text="living"))
    assert [d["serial"] for d in page] == ["HW03"]
    page, _ = registry.list(DeviceFilter(text="AGENT4"))
    assert [d["serial"] for d in page] == ["os::agent4"]
    page, _ = registry.list(DeviceFilter(text=".*"))  # a literal, not a pattern
    assert page == []
    assert registry.count(DeviceFilter(product_class="USPBox", status=ONLINE)) == 4

    counts = registry.counts()
    assert counts["status"] == {"0": 1, "1": 0, "2": 16}
    assert counts["vendor"] == {"Huawei": 12, "Acme": 5}
    assert counts["product_class"] == {"HG": 12, "USPBox": 5}


def test_list_refuses_unknown_protocol_and_sort(registry):
    with pytest.raises(ValueError):
        registry.list(DeviceFilter(protocol="snmp"))
    with pytest.raises(ValueError):
        registry.list(sort="cwmp.connection_request.password")


def test_delete_then_register_again_is_a_new_device(registry):
    inform(registry, "GONE")
    assert registry.delete("GONE") is True
    assert registry.delete("GONE") is False
    assert registry.get("GONE") is None
    later = T0 + timedelta(days=1)
    assert inform(registry, "GONE", now=later).inserted is True
    assert registry.get("GONE")["first_seen"] == later


async def test_deleting_a_device_drops_its_queued_cwmp_requests(registry, mongo_uri, mdb):
    from pymongo import AsyncMongoClient

    from oktoscripts.cwmp.queue import RpcQueue
    from oktoscripts.cwmp.soap import RpcRequest

    inform(registry, "DEL")
    inform(registry, "KEEP")
    client = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        queue = RpcQueue(client[mdb.name])
        await queue.ensure_indexes()
        request = RpcRequest("GetParameterValues", names=["InternetGatewayDevice."])
        for request_id, serial in (("r1", "DEL"), ("r2", "DEL"), ("r3", "KEEP")):
            await queue.put(request_id, serial, request, "async", 600)
        assert (await queue.take_next("DEL", "acs-1")).request_id == "r1"  # sent, unanswered
        assert await asyncio.to_thread(registry.delete, "DEL") is True
        # Seen again, the device is new: nothing of the old one is sent to it.
        assert inform(registry, "DEL", now=T0 + timedelta(days=1)).inserted is True
        assert await queue.take_next("DEL", "acs-1") is None
        assert await queue.stale_sent(-60) == []
        assert await queue.count_queued("KEEP") == 1
    finally:
        await client.close()


def test_alias(registry):
    inform(registry, "AL")
    assert registry.set_alias("AL", "  Kitchen ") is True
    assert registry.get_lua("AL")["alias"] == "Kitchen"
    assert registry.set_alias("NOPE", "x") is False
    inform(registry, "AL", now=T0 + timedelta(minutes=1))
    assert registry.get_lua("AL")["alias"] == "Kitchen"  # an Inform keeps the alias


def test_bulk_upsert_reports_inserts_in_order(registry):
    inform(registry, "B1")
    updates = [registry.cwmp_update(f"B{i}", manufacturer="Z", now=T0) for i in range(4)]
    results = registry.bulk_upsert(updates, now=T0)
    assert [r.inserted for r in results] == [True, False, True, True]
    assert registry.count() == 4
    assert registry.get("B1")["cwmp"]["connection_request"]["username"] == "cruser"


def test_bad_arguments_are_refused(registry):
    with pytest.raises(ValueError):
        registry.upsert(DeviceUpdate("", "cwmp"))
    with pytest.raises(ValueError):
        registry.upsert(DeviceUpdate("X", "snmp"))
    with pytest.raises(ValueError):
        registry.upsert(DeviceUpdate("X", "cwmp", shared={"status": 2}))
    with pytest.raises(ValueError):
        registry.get("")
    with pytest.raises(ValueError):
        registry.set_alias("X", None)


def test_all_devices_in_serial_order(registry):
    for serial in ("C", "A", "B"):
        inform(registry, serial)
    assert [d["sn"] for d in registry.all_lua()] == ["A", "B", "C"]


def test_the_listing_is_every_device_table_in_the_databases_serial_order(registry):
    """get_all_devices reads without a sort and with naive datetimes: each
    table must still be get_device's, and the order MongoDB's own."""
    serials = ["b", "B", "a10", "a9", "Z", "é-1", "e-2", "日本-1", "1", "_x"]
    for k, serial in enumerate(serials):
        now = T0 + timedelta(milliseconds=k * 1001 + 7)
        if k % 2:
            inform(registry, serial, now)
        if k % 3:
            registry.upsert_usp(serial, vendor="V", mtp="websocket", now=now)
            registry.upsert_usp(serial, mtp="mqtt", lease_s=60, now=now)
        if k % 2 == 0 and k % 3 == 0:
            registry.upsert_usp(serial, now=now)
    registry.set_alias("Z", "the Z")
    registry.set_params("b", {"Device.DeviceInfo.SoftwareVersion": "1.2", "X.Y": "z"})
    by_database = [d["_id"] for d in registry.collection.find({}, {"_id": 1}).sort("_id", 1)]
    listing = registry.all_lua()
    assert [d["sn"] for d in listing] == by_database
    assert listing == [registry.get_lua(serial) for serial in by_database]
    assert listing[by_database.index("b")]["params"] == {
        "Device.DeviceInfo.SoftwareVersion": "1.2",
        "X.Y": "z",
    }
    assert listing[by_database.index("B")]["mtps"] == ["mqtt", "websocket"]
    assert listing[by_database.index("a10")]["last_seen"] == "2026-01-01T12:00:02.009Z"


def test_the_listing_leaves_the_garbage_collector_as_it_found_it(registry):
    import gc

    inform(registry, "A")
    assert gc.isenabled()
    registry.all_lua()
    assert gc.isenabled()
    gc.disable()
    try:
        registry.all_lua()
        assert not gc.isenabled()  # not ours to turn on
    finally:
        gc.enable()
