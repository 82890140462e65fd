"""Parameter-path completion: the standard data models from the Broadband
Forum's definitions, and the paths devices of a product class reported."""

from __future__ import annotations

import json

import pytest

from ide import datamodel


def test_the_data_file_carries_both_models_and_the_bbf_licence():
    data = json.loads(datamodel.DATA.read_text(encoding="utf-8"))
    models = {m["model"].split(":")[0] for m in data["models"]}
    assert models == {"Device", "InternetGatewayDevice"}
    assert any("Broadband Forum" in text and "Redistribution" in text for text in data["licence"])


def test_children_of_a_path_with_type_and_access():
    wifi = {n.name: n for n in datamodel.children("Device.WiFi.")}
    assert wifi["SSID."].type == "table" and wifi["Radio."].type == "table"
    ssid = {n.name: n for n in datamodel.children("Device.WiFi.SSID.3.")}
    assert ssid["SSID"].path == "Device.WiFi.SSID.3.SSID"
    assert ssid["SSID"].type == "string" and ssid["SSID"].access == "readWrite"
    assert ssid["BSSID"].access == "readOnly"
    # A partly typed segment lists its parent's children (the editor filters).
    assert "SSID" in {n.name for n in datamodel.children("Device.WiFi.SSID.3.SS")}
    igd = {n.name for n in datamodel.children("InternetGatewayDevice.LANDevice.1.")}
    assert "WLANConfiguration." in igd
    assert datamodel.describe("Device.WiFi.SSID.7.SSID").doc


def test_reported_paths_add_instances_and_vendor_extensions():
    reported = ["Device.WiFi.SSID.1.SSID", "Device.WiFi.SSID.4.SSID", "Device.X_ACME_Fan.Speed"]
    ssids = [n.name for n in datamodel.children("Device.WiFi.SSID.", reported)]
    assert ssids[:2] == ["1.", "4."] and "{i}." in ssids
    vendor = {n.name: n for n in datamodel.children("Device.", reported)}["X_ACME_Fan."]
    assert vendor.reported and vendor.type == "object"


@pytest.fixture
def device_with_params(mongo_uri):
    from oktoscripts.devices.client import default_registry

    datamodel._reported.clear()
    datamodel._product_classes.clear()
    registry = default_registry()
    registry.collection.delete_many({})
    registry.upsert_cwmp(
        "ACME-0001",
        oui="00AA11",
        product_class="Router",
        manufacturer="Acme",
        model="R1",
        software_version="1.0",
        events=["1 BOOT"],
        periodic_inform_interval=300,
    )
    registry.upsert_cwmp(
        "ACME-0002",
        oui="00AA11",
        product_class="Router",
        manufacturer="Acme",
        model="R1",
        software_version="1.0",
        events=["1 BOOT"],
        periodic_inform_interval=300,
    )
    registry.set_params(
        "ACME-0001", {"Device.WiFi.SSID.2.SSID": "lab", "Device.X_ACME_Led.Colour": "green"}
    )
    yield registry
    registry.collection.delete_many({})
    datamodel._reported.clear()
    datamodel._product_classes.clear()


def test_rest_completion_for_a_device_uses_its_product_class(client_for, device_with_params):
    client = client_for("viewer")
    # ACME-0002 never reported parameters; a device of its product class did.
    body = client.get("/api/datamodel", {"prefix": "Device.", "serial": "ACME-0002"}).json()
    assert body["product_class"] == "Router"
    names = {n["name"]: n for n in body["children"]}
    assert names["X_ACME_Led."]["reported"] and names["WiFi."]["reported"]
    assert not names["ATM."]["reported"]
    ssid = client.get("/api/datamodel", {"prefix": "Device.WiFi.SSID.2.SSID"}).json()
    assert ssid["described"]["type"] == "string" and ssid["described"]["writable"] is True
    assert client_for("nobody").get("/api/datamodel", {"prefix": "Device."}).status_code == 403


def test_declared_device_fields_are_the_keys_of_a_device_table():
    """The fields the editor completes after ``d.`` are declared with the
    bindings: they must be what a script gets."""
    from oktoscripts.bindings import all_bindings
    from oktoscripts.devices.documents import lua_table

    by_name = {b.name: b for b in all_bindings()}
    table = lua_table({"serial": "SN1", "status": 2})
    for name in ("get_device", "get_all_devices"):
        assert {f.name for f in by_name[name].fields} == set(table)
    from ide.completion import api_entries

    entry = next(e for e in api_entries() if e["name"] == "get_device")
    assert {"name": "vendor", "type": "string", "doc": "the manufacturer"} in entry["fields"]


def test_usp_commands_and_their_inputs_are_in_the_model():
    from ide import datamodel

    commands = {n.name: n for n in datamodel.children("Device.") if n.type == "command"}
    assert {"Reboot()", "FactoryReset()"} <= set(commands)
    inputs = {n.name: n for n in datamodel.children("Device.IP.Diagnostics.IPPing().")}
    assert inputs["Host"].type == "string" and inputs["Host"].access == "readWrite"


def test_every_usp_shape_the_editor_inserts_is_a_request_a_script_may_send():
    from ide.uspschema import SHAPES, schema
    from oktoscripts.usp.messages import SCRIPT_REQUESTS, parse_script_payload, request_kind

    offered = schema()["msg"]["fields"]["body"]["fields"]["request"]["fields"]
    assert set(offered) == set(SCRIPT_REQUESTS) == set(SHAPES)
    for kind, shape in SHAPES.items():
        msg = parse_script_payload({"body": {"request": {kind: shape}}})
        assert request_kind(msg) == kind
    operate = offered["operate"]["fields"]
    assert operate["input_args"]["type"] == "map" and operate["send_resp"]["type"] == "bool"
    assert offered["set"]["fields"]["update_objs"]["repeated"] is True
