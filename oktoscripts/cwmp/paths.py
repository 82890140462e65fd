"""The TR-069 parameter paths the platform uses, for both data models, in one table.

TR-098 devices root at ``InternetGatewayDevice.``, TR-181 devices at ``Device.``.
Where a value lives in one of several places (PPPoE vs IPoE WAN), the
candidates are listed in order of preference.
"""

from __future__ import annotations

TR098 = "TR-098"
TR181 = "TR-181"

ROOTS = {TR098: "InternetGatewayDevice.", TR181: "Device."}

_IGD_WAN = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1."

PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    TR098: {
        "manufacturer": ("InternetGatewayDevice.DeviceInfo.Manufacturer",),
        "model": ("InternetGatewayDevice.DeviceInfo.ModelName",),
        "product_class": ("InternetGatewayDevice.DeviceInfo.ProductClass",),
        "serial_number": ("InternetGatewayDevice.DeviceInfo.SerialNumber",),
        "software_version": ("InternetGatewayDevice.DeviceInfo.SoftwareVersion",),
        "hardware_version": ("InternetGatewayDevice.DeviceInfo.HardwareVersion",),
        "uptime": ("InternetGatewayDevice.DeviceInfo.UpTime",),
        "pppoe_username": (_IGD_WAN + "WANPPPConnection.1.Username",),
        "wan_ip": (
            _IGD_WAN + "WANPPPConnection.1.ExternalIPAddress",
            _IGD_WAN + "WANIPConnection.1.ExternalIPAddress",
        ),
        "wan_mac": (
            _IGD_WAN + "WANPPPConnection.1.MACAddress",
            _IGD_WAN + "WANIPConnection.1.MACAddress",
        ),
        "connection_request_url": ("InternetGatewayDevice.ManagementServer.ConnectionRequestURL",),
        "periodic_inform_interval": (
            "InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
        ),
    },
    TR181: {
        "manufacturer": ("Device.DeviceInfo.Manufacturer",),
        "model": ("Device.DeviceInfo.ModelName",),
        "product_class": ("Device.DeviceInfo.ProductClass",),
        "serial_number": ("Device.DeviceInfo.SerialNumber",),
        "software_version": ("Device.DeviceInfo.SoftwareVersion",),
        "hardware_version": ("Device.DeviceInfo.HardwareVersion",),
        "uptime": ("Device.DeviceInfo.UpTime",),
        "pppoe_username": ("Device.PPP.Interface.1.Username",),
        "wan_ip": ("Device.IP.Interface.1.IPv4Address.1.IPAddress",),
        "wan_mac": ("Device.Ethernet.Interface.1.MACAddress",),
        "connection_request_url": ("Device.ManagementServer.ConnectionRequestURL",),
        "periodic_inform_interval": ("Device.ManagementServer.PeriodicInformInterval",),
    },
}

# What refresh_device_parameters reads and keeps on the device record.
REFRESHED = (
    "pppoe_username",
    "wan_ip",
    "wan_mac",
    "manufacturer",
    "model",
    "product_class",
    "serial_number",
    "software_version",
    "hardware_version",
    "uptime",
)


def data_model_of(parameter_names: object) -> str:
    """ "TR-098" or "TR-181" from the root of the parameters a CPE sent; "" if neither."""
    for name in parameter_names:
        if name.startswith(ROOTS[TR098]):
            return TR098
        if name.startswith(ROOTS[TR181]):
            return TR181
    return ""


def lookup(values: dict[str, str], data_model: str, key: str) -> str | None:
    """The first candidate path of ``key`` present in ``values``."""
    for path in PATHS.get(data_model, {}).get(key, ()):
        if path in values:
            return values[path]
    return None


def candidates(data_model: str, keys: tuple[str, ...] = REFRESHED) -> list[str]:
    return [path for key in keys for path in PATHS.get(data_model, {}).get(key, ())]
