"""A small TR-181 (Device:2) data model for the simulated USP agent.

It holds the supported data model (objects in ``{i}`` notation with their
parameters, commands and events) and the instantiated data model of one
agent (object instances and parameter values), and resolves USP paths
against it: partial paths, wildcards (``*``), instance numbers and simple
search expressions (``[Alias=="wan"]``, ``[Enable==true&&Status=="Up"]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# USP error codes used by the simulator (TR-369 "Error Codes").
ERR_MESSAGE_FAILED = 7000
ERR_INVALID_ARGUMENTS = 7004
ERR_INVALID_PATH_SYNTAX = 7008
ERR_UNSUPPORTED_PARAM = 7010
ERR_INVALID_TYPE = 7011
ERR_INVALID_VALUE = 7012
ERR_NOT_WRITABLE = 7013
ERR_OBJECT_NOT_EXIST = 7016
ERR_NOT_A_TABLE = 7018
ERR_NOT_CREATABLE = 7019
ERR_COMMAND_FAILURE = 7022
ERR_INVALID_PATH = 7026


class PathError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ParamSpec:
    type: str = "string"  # string | boolean | unsignedInt | int | dateTime
    writable: bool = False
    write_only: bool = False  # passwords: Get returns ""


@dataclass(frozen=True)
class CommandSpec:
    asynchronous: bool = False
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectSpec:
    params: dict[str, ParamSpec]
    multi: bool = False
    creatable: bool = False
    unique_keys: tuple[str, ...] = ()
    commands: dict[str, CommandSpec] = field(default_factory=dict)
    events: dict[str, tuple[str, ...]] = field(default_factory=dict)


R, W = ParamSpec(), ParamSpec(writable=True)
RB, WB = ParamSpec("boolean"), ParamSpec("boolean", writable=True)
RU, WU = ParamSpec("unsignedInt"), ParamSpec("unsignedInt", writable=True)
PASSWORD = ParamSpec(writable=True, write_only=True)

SUPPORTED: dict[str, ObjectSpec] = {
    "Device.": ObjectSpec(
        {"RootDataModelVersion": R, "InterfaceStackNumberOfEntries": RU},
        commands={
            "Reboot()": CommandSpec(),
            "FactoryReset()": CommandSpec(),
            "SelfTestDiagnostics()": CommandSpec(True, (), ("Status", "Results")),
        },
        events={"Boot!": ("CommandKey", "Cause", "FirmwareUpdated", "ParameterMap")},
    ),
    "Device.DeviceInfo.": ObjectSpec(
        {
            "Manufacturer": R,
            "ManufacturerOUI": R,
            "ModelName": R,
            "Description": R,
            "ProductClass": R,
            "SerialNumber": R,
            "HardwareVersion": R,
            "SoftwareVersion": R,
            "UpTime": RU,
            "ProvisioningCode": W,
            "ActiveFirmwareImage": R,
            "BootFirmwareImage": W,
            "FirmwareImageNumberOfEntries": RU,
        }
    ),
    "Device.DeviceInfo.FirmwareImage.{i}.": ObjectSpec(
        {"Alias": W, "Name": R, "Version": R, "Available": WB, "Status": R},
        multi=True,
        unique_keys=("Alias",),
        commands={
            "Download()": CommandSpec(
                True,
                (
                    "URL",
                    "AutoActivate",
                    "Username",
                    "Password",
                    "FileSize",
                    "CheckSumAlgorithm",
                    "CheckSum",
                ),
            ),
            "Activate()": CommandSpec(True),
        },
    ),
    "Device.LocalAgent.": ObjectSpec(
        {
            "EndpointID": R,
            "SoftwareVersion": R,
            "UpTime": RU,
            "SupportedProtocols": R,
            "ControllerNumberOfEntries": RU,
            "SubscriptionNumberOfEntries": RU,
            "RequestNumberOfEntries": RU,
        },
        events={
            "TransferComplete!": (
                "Command",
                "CommandKey",
                "Requestor",
                "TransferType",
                "Affected",
                "TransferURL",
                "FaultCode",
                "FaultString",
                "StartTime",
                "CompleteTime",
            )
        },
    ),
    "Device.LocalAgent.Controller.{i}.": ObjectSpec(
        {"Alias": W, "EndpointID": W, "Enable": WB},
        multi=True,
        creatable=True,
        unique_keys=("Alias", "EndpointID"),
    ),
    "Device.LocalAgent.Subscription.{i}.": ObjectSpec(
        {
            "Alias": W,
            "Enable": WB,
            "ID": W,
            "Recipient": W,
            "NotifType": W,
            "ReferenceList": W,
            "Persistent": WB,
            "NotifRetry": WB,
        },
        multi=True,
        creatable=True,
        unique_keys=("Alias", "ID"),
    ),
    "Device.LocalAgent.Request.{i}.": ObjectSpec(
        {"Alias": R, "Originator": R, "Command": R, "CommandKey": R, "Status": R},
        multi=True,
        unique_keys=("Alias",),
    ),
    "Device.Ethernet.": ObjectSpec({"InterfaceNumberOfEntries": RU}),
    "Device.Ethernet.Interface.{i}.": ObjectSpec(
        {"Alias": W, "Enable": WB, "Status": R, "Name": R, "MACAddress": R, "MaxBitRate": WU},
        multi=True,
        unique_keys=("Alias", "Name"),
    ),
    "Device.PPP.": ObjectSpec({"InterfaceNumberOfEntries": RU}),
    "Device.PPP.Interface.{i}.": ObjectSpec(
        {
            "Alias": W,
            "Enable": WB,
            "Status": R,
            "Name": R,
            "ConnectionStatus": R,
            "Username": W,
            "Password": PASSWORD,
            "LowerLayers": W,
        },
        multi=True,
        creatable=True,
        unique_keys=("Alias", "Name"),
    ),
    "Device.PPP.Interface.{i}.IPCP.": ObjectSpec({"LocalIPAddress": R, "RemoteIPAddress": R}),
    "Device.IP.": ObjectSpec({"IPv4Enable": WB, "InterfaceNumberOfEntries": RU}),
    "Device.IP.Interface.{i}.": ObjectSpec(
        {
            "Alias": W,
            "Enable": WB,
            "Status": R,
            "Name": R,
            "Type": R,
            "LowerLayers": W,
            "IPv4AddressNumberOfEntries": RU,
        },
        multi=True,
        creatable=True,
        unique_keys=("Alias", "Name"),
    ),
    "Device.IP.Interface.{i}.IPv4Address.{i}.": ObjectSpec(
        {"Alias": W, "Enable": WB, "IPAddress": W, "SubnetMask": W, "AddressingType": R},
        multi=True,
        creatable=True,
        unique_keys=("Alias",),
    ),
    "Device.IP.Diagnostics.": ObjectSpec(
        {},
        commands={
            "IPPing()": CommandSpec(
                True,
                ("Host", "NumberOfRepetitions"),
                ("Status", "SuccessCount", "FailureCount", "AverageResponseTime"),
            )
        },
    ),
    "Device.WiFi.": ObjectSpec(
        {
            "RadioNumberOfEntries": RU,
            "SSIDNumberOfEntries": RU,
            "AccessPointNumberOfEntries": RU,
        }
    ),
    "Device.WiFi.Radio.{i}.": ObjectSpec(
        {
            "Alias": W,
            "Enable": WB,
            "Status": R,
            "Name": R,
            "OperatingFrequencyBand": R,
            "Channel": WU,
            "AutoChannelEnable": WB,
        },
        multi=True,
        unique_keys=("Alias", "Name"),
    ),
    "Device.WiFi.SSID.{i}.": ObjectSpec(
        {
            "Alias": W,
            "Enable": WB,
            "Status": R,
            "Name": R,
            "SSID": W,
            "BSSID": R,
            "MACAddress": R,
            "LowerLayers": W,
        },
        multi=True,
        creatable=True,
        unique_keys=("Alias", "Name"),
    ),
    "Device.WiFi.AccessPoint.{i}.": ObjectSpec(
        {"Alias": W, "Enable": WB, "SSIDReference": W, "SSIDAdvertisementEnabled": WB},
        multi=True,
        creatable=True,
        unique_keys=("Alias", "SSIDReference"),
    ),
    "Device.WiFi.AccessPoint.{i}.Security.": ObjectSpec(
        {"ModeEnabled": W, "KeyPassphrase": PASSWORD}
    ),
}

_INSTANCE = re.compile(r"\.\d+\.")
_FILTER_TERM = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$")


def supported_path(path: str) -> str:
    """``Device.IP.Interface.3.IPv4Address.1.`` -> ``Device.IP.Interface.{i}.IPv4Address.{i}.``"""
    previous = None
    while previous != path:
        previous, path = path, _INSTANCE.sub(".{i}.", path)
    return path


def split_path(path: str) -> list[str]:
    """Path segments, keeping dots inside ``[...]`` and quotes; a trailing "." gives ""."""
    segments, current, depth, quoted = [], [], 0, False
    for char in path:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "[":
            depth += 1
        elif not quoted and char == "]":
            depth -= 1
        if char == "." and depth == 0 and not quoted:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth or quoted:
        raise PathError(ERR_INVALID_PATH_SYNTAX, f"unbalanced brackets or quotes in {path!r}")
    segments.append("".join(current))
    return segments


def is_search_path(path: str) -> bool:
    return "*" in path or "[" in path


@dataclass
class Resolved:
    """What a path names: object instances, or parameters / commands / events."""

    objects: list[str] = field(default_factory=list)  # "Device.IP.Interface.1."
    params: list[str] = field(default_factory=list)  # "Device.IP.Interface.1.Name"
    commands: list[str] = field(default_factory=list)  # "Device.Reboot()"
    events: list[str] = field(default_factory=list)


class DataModel:
    """The instantiated TR-181 model of one agent."""

    def __init__(self) -> None:
        self.objects: dict[str, None] = {}  # existing object paths, in creation order
        self.values: dict[str, str] = {}  # full parameter path -> value
        self.next_instance: dict[str, int] = {}  # table path -> next instance number
        # The supported data model: this module's, or a device twin's own.
        self.supported: dict[str, ObjectSpec] = SUPPORTED

    # ---- structure -------------------------------------------------------------

    def spec(self, obj_path: str) -> ObjectSpec | None:
        return self.supported.get(supported_path(obj_path))

    def is_table(self, path: str) -> bool:
        """``Device.IP.Interface.`` names a multi-instance table (when its parent exists)."""
        spec = self.supported.get(supported_path(path) + "{i}.")
        parent = path.rsplit(".", 2)[0] + "."
        return spec is not None and spec.multi and parent in self.objects

    def instances(self, table: str) -> list[str]:
        start = len(table)
        return [p for p in self.objects if p.startswith(table) and p[start:-1].isdigit()]

    def add_object(self, obj_path: str, values: dict[str, str] | None = None) -> str:
        """Create ``obj_path`` (a static object or an instance) with default values, and the
        static sub-objects below it."""
        spec = self.spec(obj_path)
        if spec is None:
            raise PathError(ERR_INVALID_PATH, f"{obj_path} is not in the supported data model")
        self.objects[obj_path] = None
        for name, param in spec.params.items():
            if not name.endswith("NumberOfEntries"):
                default = {"boolean": "false", "unsignedInt": "0", "int": "0"}.get(param.type, "")
                self.values[obj_path + name] = default
        for name, value in (values or {}).items():
            self.values[obj_path + name] = value
        sup = supported_path(obj_path)
        for child in self.supported:
            rest = child[len(sup) :]
            if child.startswith(sup) and rest.count(".") == 1 and "{i}" not in rest:
                self.add_object(obj_path + rest)
        return obj_path

    def add_instance(self, table: str, values: dict[str, str] | None = None) -> str:
        number = self.next_instance.get(table, 1)
        self.next_instance[table] = number + 1
        values = dict(values or {})
        spec = self.spec(f"{table}{number}.")
        if spec and "Alias" in spec.params and not values.get("Alias"):
            values["Alias"] = f"cpe-{number}"
        return self.add_object(f"{table}{number}.", values)

    def delete_object(self, obj_path: str) -> list[str]:
        gone = [p for p in self.objects if p.startswith(obj_path)]
        for p in gone:
            del self.objects[p]
        for key in [k for k in self.values if k.startswith(obj_path)]:
            del self.values[key]
        return gone

    def unique_keys(self, obj_path: str) -> dict[str, str]:
        spec = self.spec(obj_path)
        return {k: self.values.get(obj_path + k, "") for k in (spec.unique_keys if spec else ())}

    # ---- values ----------------------------------------------------------------

    def get_value(self, param_path: str) -> str:
        obj, name = param_path.rsplit(".", 1)
        obj += "."
        if name.endswith("NumberOfEntries"):
            return str(len(self.instances(obj + name[: -len("NumberOfEntries")] + ".")))
        spec = self.spec(obj)
        if spec and name in spec.params and spec.params[name].write_only:
            return ""
        return self.values.get(param_path, "")

    def object_params(self, obj_path: str) -> dict[str, str]:
        spec = self.spec(obj_path)
        if spec is None:
            return {}
        return {name: self.get_value(obj_path + name) for name in spec.params}

    def param_spec(self, param_path: str) -> ParamSpec | None:
        obj, name = param_path.rsplit(".", 1)
        spec = self.spec(obj + ".")
        return spec.params.get(name) if spec else None

    # ---- path resolution ---------------------------------------------------------

    def resolve(self, path: str) -> Resolved:
        """The instantiated objects, parameters, commands or events ``path`` names.
        Raises PathError for a path outside the data model or a missing exact instance."""
        segments = split_path(path)
        if segments[0] != "Device":
            raise PathError(ERR_INVALID_PATH, f"{path} does not start with Device.")
        current = ["Device."]
        result = Resolved()
        for index, segment in enumerate(segments[1:], start=1):
            last = index == len(segments) - 1
            if segment == "":
                if not last:
                    raise PathError(ERR_INVALID_PATH_SYNTAX, f"empty segment in {path}")
                break
            current = self._step(current, segment, last, path, result)
        else:
            return result
        for obj in current:
            if self.is_table(obj):
                result.objects.extend(self.instances(obj))
            else:
                result.objects.append(obj)
        return result

    def _step(
        self, current: list[str], segment: str, last: bool, path: str, result: Resolved
    ) -> list[str]:
        if segment == "*" or segment.isdigit() or segment.startswith("["):
            selected = []
            for table in current:
                if not self.is_table(table):
                    raise PathError(ERR_INVALID_PATH, f"{table} is not a table in {path}")
                for inst in self.instances(table):
                    if self._selects(inst, segment):
                        selected.append(inst)
            if segment.isdigit() and not selected and not is_search_path(path):
                raise PathError(ERR_OBJECT_NOT_EXIST, f"{current[0]}{segment}. does not exist")
            return selected
        following = []
        for obj in current:
            if self.is_table(obj):
                raise PathError(ERR_INVALID_PATH, f"{obj} needs an instance in {path}")
            spec = self.spec(obj)
            child = obj + segment + "."
            if child in self.objects or self.is_table(child):
                following.append(child)
            elif spec and segment in spec.params and last:
                result.params.append(obj + segment)
            elif spec and segment in spec.commands and last:
                result.commands.append(obj + segment)
            elif spec and segment in spec.events and last:
                result.events.append(obj + segment)
            else:
                raise PathError(ERR_INVALID_PATH, f"{obj}{segment} is not in the data model")
        return following

    def _selects(self, inst: str, segment: str) -> bool:
        if segment == "*":
            return True
        if segment.isdigit():
            return inst.endswith(f".{segment}.")
        expression = segment[1:-1]
        return all(self._term_holds(inst, term) for term in expression.split("&&"))

    def _term_holds(self, inst: str, term: str) -> bool:
        match = _FILTER_TERM.match(term)
        if not match:
            raise PathError(ERR_INVALID_PATH_SYNTAX, f"cannot read search expression {term!r}")
        name, op, wanted = match.groups()
        wanted = wanted[1:-1] if len(wanted) >= 2 and wanted[0] == wanted[-1] == '"' else wanted
        actual = self.get_value(inst + name)
        if op in ("==", "!="):
            return (actual == wanted) == (op == "==")
        try:
            a, b = float(actual), float(wanted)
        except ValueError:
            return False
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]


def valid_value(spec: ParamSpec, value: str) -> bool:
    if spec.type == "boolean":
        return value in ("true", "false", "1", "0")
    if spec.type == "unsignedInt":
        return value.isdigit() and int(value) < 2**32
    if spec.type == "int":
        return re.fullmatch(r"-?\d+", value) is not None
    return True


def normalize_value(spec: ParamSpec, value: str) -> str:
    if spec.type == "boolean":
        return "true" if value in ("true", "1") else "false"
    return value


def default_device(endpoint_id: str, serial: str, index: int = 1) -> DataModel:
    """A home gateway with a PPPoE WAN, a LAN bridge and two Wi-Fi radios."""
    dm = DataModel()
    dm.add_object("Device.", {"RootDataModelVersion": "2.16"})
    dm.values.update(
        {
            "Device.DeviceInfo.Manufacturer": "Oktoscripts Sim",
            "Device.DeviceInfo.ManufacturerOUI": "00D09E",
            "Device.DeviceInfo.ModelName": "USP-GW-1",
            "Device.DeviceInfo.Description": "Simulated USP home gateway",
            "Device.DeviceInfo.ProductClass": "HGW",
            "Device.DeviceInfo.SerialNumber": serial,
            "Device.DeviceInfo.HardwareVersion": "1.0",
            "Device.DeviceInfo.SoftwareVersion": "4.2.0",
            "Device.LocalAgent.EndpointID": endpoint_id,
            "Device.LocalAgent.SoftwareVersion": "4.2.0",
            "Device.LocalAgent.SupportedProtocols": "MQTT, WebSocket",
            "Device.IP.IPv4Enable": "true",
        }
    )
    from oktoscripts.sim.usp_firmware import add_images  # it builds on this module

    add_images(dm, dm.values["Device.DeviceInfo.SoftwareVersion"])
    mac = "02:00:" + ":".join(f"{(index >> shift) & 255:02X}" for shift in (24, 16, 8, 0))
    dm.add_instance(
        "Device.Ethernet.Interface.",
        {
            "Alias": "wan-eth",
            "Enable": "true",
            "Status": "Up",
            "Name": "eth0",
            "MACAddress": mac,
            "MaxBitRate": "1000",
        },
    )
    ppp = dm.add_instance(
        "Device.PPP.Interface.",
        {
            "Alias": "wan-ppp",
            "Enable": "true",
            "Status": "Up",
            "Name": "ppp0",
            "ConnectionStatus": "Connected",
            "Username": f"user{index}@isp.example",
            "Password": "secret",
            "LowerLayers": "Device.Ethernet.Interface.1.",
        },
    )
    wan_ip = f"100.64.{(index >> 8) & 255}.{index & 255}"
    dm.values[ppp + "IPCP.LocalIPAddress"] = wan_ip
    dm.values[ppp + "IPCP.RemoteIPAddress"] = "100.64.0.1"
    wan = dm.add_instance(
        "Device.IP.Interface.",
        {
            "Alias": "wan",
            "Enable": "true",
            "Status": "Up",
            "Name": "wan0",
            "Type": "Normal",
            "LowerLayers": ppp,
        },
    )
    dm.add_instance(
        wan + "IPv4Address.",
        {
            "Alias": "wan-v4",
            "Enable": "true",
            "IPAddress": wan_ip,
            "SubnetMask": "255.255.255.255",
            "AddressingType": "IPCP",
        },
    )
    lan = dm.add_instance(
        "Device.IP.Interface.",
        {
            "Alias": "lan",
            "Enable": "true",
            "Status": "Up",
            "Name": "br-lan",
            "Type": "Normal",
        },
    )
    dm.add_instance(
        lan + "IPv4Address.",
        {
            "Alias": "lan-v4",
            "Enable": "true",
            "IPAddress": "192.168.1.1",
            "SubnetMask": "255.255.255.0",
            "AddressingType": "Static",
        },
    )
    for number, band, channel in ((1, "2.4GHz", "6"), (2, "5GHz", "36")):
        radio = dm.add_instance(
            "Device.WiFi.Radio.",
            {
                "Alias": f"radio{number}",
                "Enable": "true",
                "Status": "Up",
                "Name": f"wlan{number - 1}",
                "OperatingFrequencyBand": band,
                "Channel": channel,
                "AutoChannelEnable": "true",
            },
        )
        ssid = dm.add_instance(
            "Device.WiFi.SSID.",
            {
                "Alias": f"ssid{number}",
                "Enable": "true",
                "Status": "Up",
                "Name": f"wl{number - 1}",
                "SSID": f"Sim-{serial}-{band}",
                "BSSID": mac,
                "MACAddress": mac,
                "LowerLayers": radio,
            },
        )
        ap = dm.add_instance(
            "Device.WiFi.AccessPoint.",
            {
                "Alias": f"ap{number}",
                "Enable": "true",
                "SSIDReference": ssid,
                "SSIDAdvertisementEnabled": "true",
            },
        )
        dm.values[ap + "Security.ModeEnabled"] = "WPA2-Personal"
        dm.values[ap + "Security.KeyPassphrase"] = "simulated-passphrase"
    return dm
