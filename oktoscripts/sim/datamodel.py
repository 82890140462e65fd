"""The parameter tree of a simulated CPE (TR-098 or TR-181) and the five RPCs on it.

Faults are those a real CPE gives (TR-069 Annex A): 9003 invalid arguments,
9005 invalid parameter name, 9006 invalid parameter type, 9007 invalid
parameter value, 9008 attempt to set a non-writable parameter, and 9002
internal error where firmware refuses a request it does not support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TR098 = "TR-098"
TR181 = "TR-181"

FAULT_STRINGS = {
    "9000": "Method not supported",
    "9002": "Internal error",
    "9003": "Invalid arguments",
    "9005": "Invalid parameter name",
    "9006": "Invalid parameter type",
    "9007": "Invalid parameter value",
    "9008": "Attempt to set a non-writable parameter",
}


class CwmpFault(Exception):
    def __init__(
        self,
        code: str,
        message: str = "",
        parameter_faults: list[tuple[str, str, str]] | None = None,
    ) -> None:
        super().__init__(f"{code} {message or FAULT_STRINGS.get(code, '')}")
        self.code = code
        self.message = message or FAULT_STRINGS.get(code, "Fault")
        self.parameter_faults = parameter_faults or []


@dataclass
class Parameter:
    value: str
    type: str = "string"  # xsd type
    writable: bool = False


@dataclass
class DataModel:
    root: str
    params: dict[str, Parameter] = field(default_factory=dict)
    # Multi-instance object templates: "Device.NAT.PortMapping." -> child params
    tables: dict[str, dict[str, Parameter]] = field(default_factory=dict)
    next_instance: dict[str, int] = field(default_factory=dict)
    quirk_no_partial_gpv: bool = False

    # -- structure --------------------------------------------------------

    def objects(self) -> set[str]:
        """Every object path (ending with ".") implied by the parameters and tables."""
        out = {self.root}
        for name in list(self.params) + list(self.tables):
            parts = name.split(".")
            for i in range(1, len(parts)):
                out.add(".".join(parts[:i]) + ".")
        return out

    def _leaves_under(self, path: str) -> list[str]:
        return [n for n in self.params if n.startswith(path)]

    # -- the RPCs -----------------------------------------------------------

    def get_values(self, names: list[str]) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        objects = self.objects()
        for name in names:
            if name == "":
                name = self.root
            if name.endswith("."):
                if name not in objects:
                    raise CwmpFault("9005", f"Invalid parameter name {name}")
                if self.quirk_no_partial_gpv:
                    raise CwmpFault("9002", "Partial path not supported")
                out += [
                    (n, self.params[n].value, self.params[n].type) for n in self._leaves_under(name)
                ]
            elif name in self.params:
                p = self.params[name]
                out.append((name, p.value, p.type))
            else:
                raise CwmpFault("9005", f"Invalid parameter name {name}")
        return out

    def set_values(self, values: list[tuple[str, str, str]]) -> None:
        """All or nothing: any bad parameter gives 9003 with one entry per fault."""
        faults: list[tuple[str, str, str]] = []
        for name, value, xsd_type in values:
            p = self.params.get(name)
            if p is None:
                faults.append((name, "9005", FAULT_STRINGS["9005"]))
            elif not p.writable:
                faults.append((name, "9008", FAULT_STRINGS["9008"]))
            elif (
                xsd_type
                and xsd_type != p.type
                and not (xsd_type == "string" and _valid(p.type, value))
            ):
                faults.append((name, "9006", FAULT_STRINGS["9006"]))
            elif not _valid(p.type, value):
                faults.append((name, "9007", FAULT_STRINGS["9007"]))
        if faults:
            raise CwmpFault("9003", FAULT_STRINGS["9003"], faults)
        for name, value, _ in values:
            p = self.params[name]
            p.value = _canonical(p.type, value)

    def add_object(self, path: str) -> int:
        template = self.tables.get(path)
        if template is None:
            raise CwmpFault("9005", f"Not a multi-instance object: {path}")
        number = self.next_instance.get(path, 1)
        self.next_instance[path] = number + 1
        for leaf, p in template.items():
            self.params[f"{path}{number}.{leaf}"] = Parameter(p.value, p.type, p.writable)
        return number

    def delete_object(self, path: str) -> None:
        match = re.fullmatch(r"(.*\.)(\d+)\.", path)
        if not match or match.group(1) not in self.tables:
            raise CwmpFault("9005", f"Not an object instance: {path}")
        doomed = self._leaves_under(path)
        if not doomed:
            raise CwmpFault("9005", f"No such instance: {path}")
        for name in doomed:
            del self.params[name]

    def get_names(self, path: str, next_level: bool) -> list[tuple[str, bool]]:
        path = path or self.root
        objects = self.objects()
        if not path.endswith("."):
            if path not in self.params:
                raise CwmpFault("9005", f"Invalid parameter name {path}")
            if next_level:
                raise CwmpFault("9003", "NextLevel true on a parameter")
            return [(path, self.params[path].writable)]
        if path not in objects:
            raise CwmpFault("9005", f"Invalid parameter name {path}")
        names = sorted(o for o in objects if o.startswith(path) and o != path)
        names += sorted(n for n in self.params if n.startswith(path))
        if next_level:
            depth = path.count(".")
            names = [n for n in names if n.rstrip(".").count(".") == depth]
        out = [(n, self._writable(n)) for n in names]
        return out if next_level else [(path, self._writable(path)), *out]

    def _writable(self, name: str) -> bool:
        """TR-069's Writable: a parameter that can be set; a table AddObject can
        add to; an instance of a table DeleteObject can delete."""
        if not name.endswith("."):
            return self.params[name].writable
        match = re.fullmatch(r"(.*\.)\d+\.", name)
        return name in self.tables or (match is not None and match.group(1) in self.tables)

    def value(self, name: str) -> str:
        return self.params[name].value if name in self.params else ""


def _valid(xsd_type: str, value: str) -> bool:
    if xsd_type == "unsignedInt":
        return value.isdigit() and int(value) < 2**32
    if xsd_type == "int":
        return re.fullmatch(r"-?\d+", value) is not None
    if xsd_type == "boolean":
        return value.lower() in ("0", "1", "true", "false")
    if xsd_type == "dateTime":
        return (
            re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?", value)
            is not None
        )
    return len(value) <= 256


def _canonical(xsd_type: str, value: str) -> str:
    if xsd_type == "boolean":
        return "1" if value.lower() in ("1", "true") else "0"
    return value


def _p(value: str, type_: str = "string", writable: bool = False) -> Parameter:
    return Parameter(value, type_, writable)


def build(
    data_model: str,
    *,
    serial: str,
    oui: str,
    manufacturer: str,
    product_class: str,
    model: str,
    software_version: str,
    index: int,
    acs_url: str,
    cr_url: str,
    periodic_interval: int,
) -> DataModel:
    """A fresh device of either data model, with values unique to ``index``."""
    ip = f"100.{64 + index // 65536 % 64}.{index // 256 % 256}.{index % 256}"
    mac = "02:00:" + ":".join(f"{(index >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))
    if data_model == TR098:
        root = "InternetGatewayDevice."
        wan = root + "WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1."
        extra = {
            wan + "Enable": _p("1", "boolean", True),
            wan + "Username": _p(f"user{index}@isp.example", "string", True),
            wan + "Password": _p("", "string", True),
            wan + "ExternalIPAddress": _p(ip),
            wan + "MACAddress": _p(mac),
            wan + "ConnectionStatus": _p("Connected"),
            root + "LANDevice.1.WLANConfiguration.1.SSID": _p(f"home-{index}", "string", True),
            root + "LANDevice.1.WLANConfiguration.1.Enable": _p("1", "boolean", True),
            root + "LANDevice.1.WLANConfiguration.1.Channel": _p("6", "unsignedInt", True),
        }
        tables = {
            root + "Layer3Forwarding.Forwarding.": {
                "Enable": _p("0", "boolean", True),
                "DestIPAddress": _p("", "string", True),
            }
        }
    else:
        root = "Device."
        extra = {
            root + "PPP.Interface.1.Enable": _p("1", "boolean", True),
            root + "PPP.Interface.1.Username": _p(f"user{index}@isp.example", "string", True),
            root + "PPP.Interface.1.Password": _p("", "string", True),
            root + "IP.Interface.1.IPv4Address.1.IPAddress": _p(ip),
            root + "Ethernet.Interface.1.MACAddress": _p(mac),
            root + "WiFi.SSID.1.SSID": _p(f"home-{index}", "string", True),
            root + "WiFi.Radio.1.Channel": _p("6", "unsignedInt", True),
        }
        tables = {
            root + "NAT.PortMapping.": {
                "Enable": _p("0", "boolean", True),
                "ExternalPort": _p("0", "unsignedInt", True),
                "InternalClient": _p("", "string", True),
            }
        }
    info = root + "DeviceInfo."
    ms = root + "ManagementServer."
    params = {
        info + "Manufacturer": _p(manufacturer),
        info + "ManufacturerOUI": _p(oui),
        info + "ModelName": _p(model),
        info + "ProductClass": _p(product_class),
        info + "SerialNumber": _p(serial),
        info + "HardwareVersion": _p("HW1"),
        info + "SoftwareVersion": _p(software_version),
        info + "UpTime": _p("0", "unsignedInt"),
        info + "ProvisioningCode": _p("", "string", True),
        ms + "URL": _p(acs_url, "string", True),
        ms + "Username": _p("", "string", True),
        ms + "Password": _p("", "string", True),
        ms + "PeriodicInformEnable": _p("1", "boolean", True),
        ms + "PeriodicInformInterval": _p(str(periodic_interval), "unsignedInt", True),
        ms + "ConnectionRequestURL": _p(cr_url),
        ms + "ConnectionRequestUsername": _p("", "string", True),
        ms + "ConnectionRequestPassword": _p("", "string", True),
        ms + "ParameterKey": _p(""),
        **extra,
    }
    return DataModel(root=root, params=params, tables=tables)


def inform_parameters(dm: DataModel) -> list[str]:
    """The parameters a CPE sends in every Inform (its DeviceSummary-like set)."""
    root = dm.root
    names = [
        root + "DeviceInfo.HardwareVersion",
        root + "DeviceInfo.SoftwareVersion",
        root + "DeviceInfo.ProvisioningCode",
        root + "ManagementServer.ParameterKey",
        root + "ManagementServer.ConnectionRequestURL",
        root + "ManagementServer.PeriodicInformInterval",
    ]
    if root == "InternetGatewayDevice.":
        names.append(
            root + "WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ExternalIPAddress"
        )
    else:
        names.append(root + "IP.Interface.1.IPv4Address.1.IPAddress")
    return names
