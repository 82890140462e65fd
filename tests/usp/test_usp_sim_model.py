"""The simulated agent's TR-181 model and request handling, without a network."""

from __future__ import annotations

import pytest

from oktoscripts.sim.tr181 import PathError, default_device
from oktoscripts.sim.usp_requests import handle_request
from oktoscripts.usp import messages, results


@pytest.fixture
def dm():
    return default_device("os::unit-1", "UNIT1", 7)


def call(dm, kind, **fields):
    msg = messages.request(kind, **fields)
    response, effects = handle_request(dm, msg)
    return (results.script_result(kind, response) if response is not None else None), effects


def test_search_paths_wildcards_filters_and_comparisons(dm):
    assert dm.resolve('Device.IP.Interface.[Alias=="lan"].Name').params == [
        "Device.IP.Interface.2.Name"
    ]
    assert dm.resolve("Device.IP.Interface.[Enable==true&&Type==Normal].Alias").params == [
        "Device.IP.Interface.1.Alias",
        "Device.IP.Interface.2.Alias",
    ]
    assert dm.resolve("Device.WiFi.Radio.[Channel>10].Name").params == ["Device.WiFi.Radio.2.Name"]
    assert dm.resolve("Device.WiFi.SSID.*.").objects == [
        "Device.WiFi.SSID.1.",
        "Device.WiFi.SSID.2.",
    ]
    with pytest.raises(PathError) as missing:
        dm.resolve("Device.WiFi.SSID.9.SSID")
    assert missing.value.code == 7016
    with pytest.raises(PathError) as bad:
        dm.resolve("Device.WiFi.SSID.[Alias==x")
    assert bad.value.code == 7008


def test_get_of_an_object_and_write_only_parameters(dm):
    value, _ = call(dm, "get", param_paths=["Device.PPP.Interface.1."])
    assert value["Device.PPP.Interface.1.Username"] == "user7@isp.example"
    assert value["Device.PPP.Interface.1.Password"] == ""  # write-only reads as ""
    assert value["Device.PPP.Interface.1.IPCP.LocalIPAddress"] == "100.64.0.7"
    assert value["Device.PPP.Interface.1.Name"] == "ppp0"
    counts, _ = call(dm, "get", param_paths=["Device.WiFi.SSIDNumberOfEntries"])
    assert counts == {"Device.WiFi.SSIDNumberOfEntries": "2"}


def test_set_allow_partial_keeps_the_good_objects(dm):
    value, effects = call(
        dm,
        "set",
        allow_partial=True,
        update_objs=[
            {
                "obj_path": "Device.WiFi.SSID.1.",
                "param_settings": [{"param": "SSID", "value": "ok", "required": True}],
            },
            {
                "obj_path": "Device.WiFi.SSID.2.",
                "param_settings": [{"param": "Enable", "value": "maybe", "required": True}],
            },
        ],
    )
    assert value["error_code"] == "7012"  # the failed object is reported...
    assert dm.values["Device.WiFi.SSID.1.SSID"] == "ok"  # ...and the other one was set
    assert effects.changed == ["Device.WiFi.SSID.1.SSID"]


def test_set_non_required_failure_is_not_an_error(dm):
    value, _ = call(
        dm,
        "set",
        update_objs=[
            {
                "obj_path": "Device.WiFi.SSID.1.",
                "param_settings": [
                    {"param": "SSID", "value": "x", "required": True},
                    {"param": "BSSID", "value": "nope", "required": False},
                ],
            }
        ],
    )
    assert value == {"Device.WiFi.SSID.1.SSID": "x"}


def test_set_with_a_search_path_updates_every_match(dm):
    value, _ = call(
        dm,
        "set",
        update_objs=[
            {
                "obj_path": "Device.WiFi.SSID.*.",
                "param_settings": [{"param": "Enable", "value": "0"}],
            }
        ],
    )
    assert value == {"Device.WiFi.SSID.1.Enable": "false", "Device.WiFi.SSID.2.Enable": "false"}


def test_add_to_a_non_creatable_table_fails(dm):
    value, _ = call(dm, "add", create_objs=[{"obj_path": "Device.WiFi.Radio."}])
    assert value["error_code"] == "7019"


def test_get_instances_and_supported_dm(dm):
    value, _ = call(dm, "get_instances", obj_paths=["Device.IP.Interface.1."])
    assert [v["instantiated_obj_path"] for v in value] == [
        "Device.IP.Interface.1.",
        "Device.IP.Interface.1.IPv4Address.1.",
    ]
    value, _ = call(
        dm,
        "get_supported_dm",
        obj_paths=["Device."],
        first_level_only=True,
        return_commands=True,
        return_events=True,
    )
    assert "Device.DeviceInfo." in value and "Device.IP.Interface.{i}." not in value
    assert value["Device."]["commands"]["Reboot()"]["command_type"] == "CMD_SYNC"
    assert value["Device."]["events"]["Boot!"]["args"][:2] == ["CommandKey", "Cause"]


def test_unsupported_request_is_a_usp_error(dm):
    msg = messages.request("register", reg_paths=[{"path": "Device.X."}])
    response, _ = handle_request(dm, msg)
    assert response.body.error.err_code == 7001
