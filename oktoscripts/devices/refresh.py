"""refresh_device_parameters: one function, one half per protocol.

The CWMP and USP code each register a reader for the devices they manage::

    from oktoscripts.devices import refresh

    async def read_cwmp(ctx, device: dict) -> dict[str, str] | None:
        ...  # read PPPoE username, WAN IP, WAN MAC and DeviceInfo.* from the CPE
        return {"InternetGatewayDevice.DeviceInfo.SoftwareVersion": "1.2", ...}

    refresh.register("cwmp", read_cwmp)

A reader gets the run context and the device document, returns the
parameters read ({full path: value}), or None when the device could not be
read (offline, fault, timeout). The dispatcher stores what it returns on the
device record (``params``) and answers true; with no reader registered for
the device's protocol it answers false.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Reader = Callable[[Any, dict], Awaitable[dict[str, str] | None]]

_readers: dict[str, Reader] = {}


def register(protocol: str, reader: Reader) -> None:
    """Install the parameter reader of a protocol ("cwmp" or "usp"); replaces any before."""
    _readers[protocol] = reader


def unregister(protocol: str) -> None:
    _readers.pop(protocol, None)


def reader_for(device: dict) -> Reader | None:
    """The reader of the protocol that manages ``device`` (CWMP first if both)."""
    for protocol in ("cwmp", "usp"):
        if isinstance(device.get(protocol), dict) and protocol in _readers:
            return _readers[protocol]
    return None
