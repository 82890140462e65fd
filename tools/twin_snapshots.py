"""Make the snapshots of the built-in demo twins (oktoscripts/twins/snapshots/*.json).

    python tools/twin_snapshots.py          # writes the three files again

- ``simulator-tr181.json``: the platform's own simulated TR-181 CPE
  (oktoscripts/sim/datamodel.py), read as ``twins`` reads a device: every
  name with its Writable flag (GetParameterNames from the root), every value
  with its xsd type.
- ``gateway-tr181.json`` and ``gateway-tr098.json``: richer home gateways
  (Device:2 and InternetGatewayDevice:1) whose names, types and writability
  come from the Broadband Forum data model already derived for the editor
  (ide/data/datamodel.json, see tools/bbf_datamodel.py): the objects listed in
  TR181 / TR098 below, each table with the number of instances given there,
  every parameter the data model defines directly in those objects. Values
  are made up here to be plausible (``value``); nothing is copied from
  another project or a real device.

Each file is a snapshot in the shape ``oktoscripts.twins.snapshot`` stores
(``oktoscripts.sim.twin_models``), with its identity facts, the CWMP
namespace the device speaks, and an ``about`` saying how it was made.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "oktoscripts" / "twins" / "snapshots"
DATAMODEL = ROOT / "ide" / "data" / "datamodel.json"

from oktoscripts.twins.schemas import WRITABLE, XSD, empty_table_schemas  # noqa: E402

# Object templates of each gateway ({i}: an instance number) -> instances of the
# table (1 for a single object). A table with 0 instances is there, empty.
TR181 = {
    "Device.": 1,
    "Device.DeviceInfo.": 1,
    "Device.DeviceInfo.MemoryStatus.": 1,
    "Device.DeviceInfo.ProcessStatus.": 1,
    "Device.DeviceInfo.FirmwareImage.{i}.": 2,
    "Device.ManagementServer.": 1,
    "Device.Time.": 1,
    "Device.WiFi.": 1,
    "Device.WiFi.Radio.{i}.": 2,
    "Device.WiFi.Radio.{i}.Stats.": 1,
    "Device.WiFi.SSID.{i}.": 2,
    "Device.WiFi.SSID.{i}.Stats.": 1,
    "Device.WiFi.AccessPoint.{i}.": 2,
    "Device.WiFi.AccessPoint.{i}.Security.": 1,
    "Device.WiFi.AccessPoint.{i}.WPS.": 1,
    "Device.WiFi.AccessPoint.{i}.AssociatedDevice.{i}.": 1,
    "Device.Hosts.": 1,
    "Device.Hosts.Host.{i}.": 3,
    "Device.Hosts.Host.{i}.IPv4Address.{i}.": 1,
    "Device.Ethernet.": 1,
    "Device.Ethernet.Interface.{i}.": 4,
    "Device.Ethernet.Interface.{i}.Stats.": 1,
    "Device.IP.": 1,
    "Device.IP.Interface.{i}.": 2,
    "Device.IP.Interface.{i}.IPv4Address.{i}.": 1,
    "Device.IP.Interface.{i}.Stats.": 1,
    "Device.DHCPv4.": 1,
    "Device.DHCPv4.Server.": 1,
    "Device.DHCPv4.Server.Pool.{i}.": 1,
    "Device.DHCPv4.Server.Pool.{i}.StaticAddress.{i}.": 0,
    "Device.DHCPv4.Server.Pool.{i}.Client.{i}.": 2,
    "Device.NAT.": 1,
    "Device.NAT.PortMapping.{i}.": 0,
}
IGD = "InternetGatewayDevice."
LAN = IGD + "LANDevice.{i}."
WCD = IGD + "WANDevice.{i}.WANConnectionDevice.{i}."
TR098 = {
    IGD: 1,
    IGD + "DeviceInfo.": 1,
    IGD + "ManagementServer.": 1,
    IGD + "Time.": 1,
    IGD + "Layer3Forwarding.": 1,
    IGD + "Layer3Forwarding.Forwarding.{i}.": 1,
    LAN: 1,
    LAN + "LANHostConfigManagement.": 1,
    LAN + "LANEthernetInterfaceConfig.{i}.": 4,
    LAN + "WLANConfiguration.{i}.": 2,
    LAN + "Hosts.": 1,
    LAN + "Hosts.Host.{i}.": 2,
    IGD + "WANDevice.{i}.": 1,
    IGD + "WANDevice.{i}.WANCommonInterfaceConfig.": 1,
    WCD: 1,
    WCD + "WANIPConnection.{i}.": 1,
    WCD + "WANIPConnection.{i}.PortMapping.{i}.": 0,
}
GATEWAYS = {
    "gateway-tr181": {
        "model": "Device:2.17",
        "objects": TR181,
        "cwmp_ns": "urn:dslforum-org:cwmp-1-2",
        "identity": {
            "vendor": "Oktodemo",
            "model": "HGW-181 demo",
            "version": "4.1.0",
            "hw_version": "B2",
            "product_class": "HGW181",
            "oui": "0A1B2C",
            "data_model": "TR-181",
        },
        "serial": "DEMO181GW0001",
    },
    "gateway-tr098": {
        "model": "InternetGatewayDevice:1.14",
        "objects": TR098,
        "cwmp_ns": "urn:dslforum-org:cwmp-1-0",
        "identity": {
            "vendor": "Oktodemo",
            "model": "IGD-98 demo",
            "version": "2.7.3",
            "hw_version": "A1",
            "product_class": "IGD098",
            "oui": "0A1B2D",
            "data_model": "TR-098",
        },
        "serial": "DEMO098GW0001",
    },
}


def about(text: str) -> str:
    return f"{text} Made by tools/twin_snapshots.py (see its docstring); run it again to remake."


# ---- values ------------------------------------------------------------------------


def value(path: str, xsd: str, numbers: tuple[int, ...], identity: dict, serial: str) -> str:
    """A plausible value of parameter ``path`` (numbers: the instances on its path)."""
    name = path.rsplit(".", 1)[-1]
    n = numbers[-1] if numbers else 1
    known = {
        "Manufacturer": identity["vendor"],
        "ManufacturerOUI": identity["oui"],
        "ModelName": identity["model"],
        "ProductClass": identity["product_class"],
        "SerialNumber": serial,
        "HardwareVersion": identity["hw_version"],
        "SoftwareVersion": identity["version"],
        "Description": f"{identity['model']} home gateway",
        "SpecVersion": "1.0",
        "URL": "http://acs.example.net:7547/",
        "PeriodicInformInterval": "300",
        "PeriodicInformEnable": "1",
        "ConnectionRequestURL": f"http://192.0.2.10:7547/{serial}",
        "SSID": f"oktodemo-{'2g' if n == 1 else '5g'}",
        "Channel": "6" if n == 1 else "36",
        "OperatingFrequencyBand": "2.4GHz" if n == 1 else "5GHz",
        "SupportedFrequencyBands": "2.4GHz" if n == 1 else "5GHz",
        "OperatingStandards": "b,g,n,ax" if n == 1 else "a,n,ac,ax",
        "Status": "Up",
        "ConnectionStatus": "Connected",
        "ConnectionType": "IP_Routed",
        "AddressingType": "DHCP",
        "ModeEnabled": "WPA2-Personal",
        "BeaconType": "11i",
        "HostName": f"host-{n}",
        "SubnetMask": "255.255.255.0",
        "NTPServer1": "pool.ntp.org",
        "LocalTimeZone": "CET-1CEST,M3.5.0,M10.5.0/3",
        "MinAddress": "192.168.1.10",
        "MaxAddress": "192.168.1.250",
        "DNSServers": "192.168.1.1",
        "IPRouters": "192.168.1.1",
        "MaxBitRate": "Auto",
        "DuplexMode": "Auto",
        "Version": identity["version"] if "FirmwareImage" in path else "",
        "Name": _name(path, n),
        "Alias": f"cpe-{path.split('.')[-3].lower() if numbers else 'obj'}-{n}",
    }
    if name in known and known[name] != "":
        return known[name]
    if name in ("Enable", "Upstream", "SSIDAdvertisementEnabled", "Active", "DHCPServerEnable"):
        return "1"
    if name.endswith("Password") or name in (
        "KeyPassphrase",
        "PreSharedKey",
        "WEPKey",
        "SAEPassphrase",
    ):
        return ""  # write-only secrets read as empty (TR-069)
    if "MACAddress" in name or name == "BSSID" or name == "PhysAddress":
        return "02:0a:1b:" + ":".join(f"{(n * 7 + i * 13) % 256:02x}" for i in range(3))
    if "IPAddress" in name or name == "IPAddress":
        if "WAN" in path or (".IP.Interface.1." in path):
            return "198.51.100.23"
        return f"192.168.1.{1 if '.IPv4Address.' in path and 'Host' not in path else 100 + n}"
    return {
        "boolean": "0",
        "int": "0",
        "long": "0",
        "unsignedInt": "0",
        "unsignedLong": "0",
        "dateTime": "0001-01-01T00:00:00Z",
        "decimal": "0",
    }.get(xsd, "")


def _name(path: str, n: int) -> str:
    if "WiFi.Radio" in path:
        return f"wl{n - 1}"
    if "WiFi.SSID" in path:
        return f"wl{n - 1}"
    if "Ethernet.Interface" in path:
        return f"eth{n - 1}"
    if "IP.Interface" in path:
        return "wan" if n == 1 else "lan"
    return ""


# ---- the gateways ---------------------------------------------------------------------


def gateway(spec: dict) -> dict:
    models = json.loads(DATAMODEL.read_text(encoding="utf-8"))["models"]
    [model] = [m for m in models if m["model"] == spec["model"]]
    defined = {p[0]: (p[1], p[2]) for p in model["paths"]}
    objects: dict[str, bool] = {}
    params: list[dict] = []
    for template in spec["objects"]:
        for concrete, numbers in _instances(template, spec["objects"]):
            writable = _table_writable(template, defined)
            if template.endswith("{i}."):
                objects[_table(concrete)] = writable
            objects[concrete] = writable
            for name, (kind, access) in defined.items():
                if kind == "object" or not name.startswith(template):
                    continue
                if "." in name[len(template) :]:
                    continue  # a parameter of a deeper object
                leaf = concrete + name[len(template) :]
                xsd = XSD.get(kind, "string")
                params.append(
                    {
                        "n": leaf,
                        "v": value(leaf, xsd, numbers, spec["identity"], spec["serial"]),
                        "t": xsd,
                        "w": access in WRITABLE,
                    }
                )
    for table in [t for t in spec["objects"] if t.endswith("{i}.") and spec["objects"][t] == 0]:
        for parent, _ in _instances(_parent(table), spec["objects"]):
            objects[parent + table[len(_parent(table)) : -len("{i}.")]] = _table_writable(
                table, defined
            )
    _count_entries(params, objects)
    root = next(iter(spec["objects"]))
    writable_tables = [o for o, w in objects.items() if w and not re.search(r"\.\d+\.\Z", o)]
    return {
        "about": about(
            f"A {spec['identity']['data_model']} home gateway, names, types and writability "
            f"from the Broadband Forum's {spec['model']} (ide/data/datamodel.json), values "
            "made up."
        ),
        "protocol": "cwmp",
        "root": root,
        "cwmp_ns": spec["cwmp_ns"],
        "serial": spec["serial"],
        "identity": spec["identity"],
        "objects": [{"n": n, "w": w} for n, w in objects.items()],
        "params": params,
        "schemas": empty_table_schemas(writable_tables, list(objects)),
    }


def _parent(template: str) -> str:
    """The object a table template hangs in: "A.B.{i}." -> "A."."""
    return template[: -len("{i}.")].rsplit(".", 2)[0] + "."


def _table(concrete_instance: str) -> str:
    return concrete_instance.rsplit(".", 2)[0] + "."


def _table_writable(template: str, defined: dict) -> bool:
    """A table AddObject may add to (and whose instances DeleteObject may delete)."""
    return template.endswith("{i}.") and defined.get(template, ("", ""))[1] in WRITABLE


def _instances(template: str, counts: dict[str, int]) -> list[tuple[str, tuple[int, ...]]]:
    """Every concrete path of ``template``, with the instance numbers on it."""
    out = [("", ())]
    parts = template.split("{i}.")
    for i, part in enumerate(parts[:-1]):
        prefix = "{i}.".join(parts[: i + 1]) + "{i}."
        out = [
            (path + part + f"{n}.", numbers + (n,))
            for path, numbers in out
            for n in range(1, counts.get(prefix, 1) + 1)
        ]
    return [(path + parts[-1], numbers) for path, numbers in out]


def _count_entries(params: list[dict], objects: dict[str, bool]) -> None:
    """Each ``XNumberOfEntries`` holds how many instances table X has."""
    for p in params:
        if p["n"].endswith("NumberOfEntries"):
            table = p["n"][: -len("NumberOfEntries")] + "."
            pattern = re.compile(re.escape(table) + r"\d+\.\Z")
            p["v"] = str(sum(1 for o in objects if pattern.match(o)))


# ---- the simulator ----------------------------------------------------------------------


def simulator() -> dict:
    """The platform's simulated TR-181 CPE, read as a twin reads a device."""
    from oktoscripts.sim import datamodel

    serial = "DEMOSIM0001"
    dm = datamodel.build(
        datamodel.TR181,
        serial=serial,
        oui="0A1B2E",
        manufacturer="Oktosim",
        product_class="OktoCPE",
        model="Oktosim CPE",
        software_version="1.0.0",
        index=1,
        acs_url="http://127.0.0.1:7547/",
        cr_url=f"http://127.0.0.1:7549/{serial}",
        periodic_interval=300,
    )
    names = dm.get_names("", False)
    return {
        "about": about(
            "The platform's simulated TR-181 CPE (oktoscripts/sim/datamodel.py), read as a "
            "twin reads a device."
        ),
        "protocol": "cwmp",
        "root": dm.root,
        "cwmp_ns": "urn:dslforum-org:cwmp-1-2",
        "serial": serial,
        "identity": {
            "vendor": "Oktosim",
            "model": "Oktosim CPE",
            "version": "1.0.0",
            "hw_version": "HW1",
            "product_class": "OktoCPE",
            "oui": "0A1B2E",
            "data_model": "TR-181",
        },
        "objects": [{"n": n, "w": w} for n, w in names if n.endswith(".")],
        "schemas": empty_table_schemas(
            [n for n, w in names if w and n.endswith(".") and not re.search(r"\.\d+\.\Z", n)],
            [n for n, _ in names if n.endswith(".")],
        ),
        "params": [
            {"n": n, "v": dm.params[n].value, "t": dm.params[n].type, "w": w}
            for n, w in names
            if not n.endswith(".")
        ],
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    made = {"simulator-tr181": simulator()}
    made.update({name: gateway(spec) for name, spec in GATEWAYS.items()})
    for name, data in made.items():
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {len(data['params'])} parameters")


if __name__ == "__main__":
    main()
