"""The simulated CPE's data models and the faults a real CPE gives."""

import pytest

from oktoscripts.sim import datamodel
from oktoscripts.sim.datamodel import CwmpFault


def model(name, **kw):
    return datamodel.build(
        name,
        serial="S1",
        oui="00A0B1",
        manufacturer="M",
        product_class="P",
        model="X",
        software_version="1",
        index=7,
        acs_url="http://acs/",
        cr_url="http://cpe/S1",
        periodic_interval=300,
    )


@pytest.mark.parametrize(
    "name, root", [("TR-098", "InternetGatewayDevice."), ("TR-181", "Device.")]
)
def test_both_data_models(name, root):
    dm = model(name)
    assert dm.root == root
    values = dict((n, v) for n, v, _ in dm.get_values([root + "DeviceInfo."]))
    assert values[root + "DeviceInfo.SerialNumber"] == "S1"
    assert all(n.startswith(root) for n in dm.params)


def test_faults():
    dm = model("TR-181")
    with pytest.raises(CwmpFault) as exc:
        dm.get_values(["Device.Nope"])
    assert exc.value.code == "9005"
    with pytest.raises(CwmpFault) as exc:
        dm.set_values(
            [
                ("Device.DeviceInfo.SerialNumber", "x", "string"),
                ("Device.WiFi.Radio.1.Channel", "x", "unsignedInt"),
                ("Device.WiFi.SSID.1.SSID", "1", "boolean"),
                ("Device.Nope", "1", "string"),
            ]
        )
    assert exc.value.code == "9003"
    assert [f[1] for f in exc.value.parameter_faults] == ["9008", "9007", "9006", "9005"]
    with pytest.raises(CwmpFault) as exc:
        dm.add_object("Device.DeviceInfo.")
    assert exc.value.code == "9005"
    with pytest.raises(CwmpFault) as exc:
        dm.get_names("Device.DeviceInfo.SerialNumber", True)
    assert exc.value.code == "9003"
    dm.quirk_no_partial_gpv = True
    with pytest.raises(CwmpFault) as exc:
        dm.get_values(["Device.DeviceInfo."])
    assert exc.value.code == "9002"


def test_objects_and_names():
    dm = model("TR-181")
    assert dm.add_object("Device.NAT.PortMapping.") == 1
    assert dm.add_object("Device.NAT.PortMapping.") == 2
    names = [n for n, _ in dm.get_names("Device.NAT.PortMapping.", True)]
    assert names == ["Device.NAT.PortMapping.1.", "Device.NAT.PortMapping.2."]
    dm.set_values(
        [
            ("Device.NAT.PortMapping.2.ExternalPort", "8080", "unsignedInt"),
            ("Device.NAT.PortMapping.2.Enable", "true", "boolean"),
        ]
    )
    assert dm.value("Device.NAT.PortMapping.2.Enable") == "1"
    dm.delete_object("Device.NAT.PortMapping.1.")
    with pytest.raises(CwmpFault):
        dm.delete_object("Device.NAT.PortMapping.1.")
    all_names = dm.get_names("Device.", False)
    assert all_names[0] == ("Device.", False)
    assert ("Device.WiFi.SSID.1.SSID", True) in all_names
