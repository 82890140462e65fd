"""Firmware images of the simulated USP agent (TR-181 Device.DeviceInfo.FirmwareImage.{i}.).

The agent has two image slots: 1 holds the running firmware ("Active"), 2 is
empty ("NoImage"). ``FirmwareImage.{i}.Download()`` (asynchronous) fetches
the file over HTTP(S) (the input URL, Username/Password with Basic or
Digest), checks it is an image (a ``version=`` line, cwmp_day2.firmware_image
makes them) and stores it in that slot: Status "Available", its Version and
Name (the file name) set; "DownloadFailed" or "ValidationFailed" else. With
AutoActivate "true", or later on ``FirmwareImage.{i}.Activate()``, the agent
reboots into it: ActiveFirmwareImage and SoftwareVersion follow, and its
Boot! event says FirmwareUpdated "true".

Each completes with an OperationComplete notification (output arguments, or
a command failure), and a Download sends the ``Device.LocalAgent.TransferComplete!``
event to the subscriptions that ask for it, as TR-181 agents do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from oktoscripts.cwmp.http11 import HttpError
from oktoscripts.sim import cwmp_day2
from oktoscripts.sim.tr181 import DataModel

TABLE = "Device.DeviceInfo.FirmwareImage."
TRANSFER_COMPLETE = "TransferComplete!"
# TR-369 error code of a command that failed (OperationComplete cmd_failure).
COMMAND_FAILURE = 7022
_VERSION = re.compile(rb"^version=(\S+)$", re.MULTILINE)


@dataclass
class Outcome:
    """How a firmware command ended: failed (code and message), or done,
    perhaps with a reboot into ``activate`` (an image path)."""

    error: tuple[int, str] | None = None
    activate: str | None = None
    started: str = ""
    completed: str = ""


def add_images(dm: DataModel, version: str) -> None:
    """The two slots of a device running ``version``."""
    active = dm.add_instance(
        TABLE,
        {
            "Alias": "image-1",
            "Name": f"firmware-{version}.bin",
            "Version": version,
            "Available": "true",
            "Status": "Active",
        },
    )
    dm.add_instance(TABLE, {"Alias": "image-2", "Available": "false", "Status": "NoImage"})
    dm.values["Device.DeviceInfo.ActiveFirmwareImage"] = active
    dm.values["Device.DeviceInfo.BootFirmwareImage"] = active


def handles(command: str) -> bool:
    return command.startswith(TABLE) and command.endswith(("Download()", "Activate()"))


async def run(dm: DataModel, command: str, inputs: dict[str, str]) -> Outcome:
    """Carry out a FirmwareImage command (``command`` is its full path)."""
    image = command.rsplit(".", 1)[0] + "."
    if image not in dm.objects:
        return Outcome((COMMAND_FAILURE, f"no firmware image {image}"))
    if command.endswith("Activate()"):
        if dm.values.get(image + "Status") not in ("Available", "Active"):
            return Outcome((COMMAND_FAILURE, f"{image} holds no image to activate"))
        return Outcome(activate=image)
    return await _download(dm, image, inputs)


async def _download(dm: DataModel, image: str, inputs: dict[str, str]) -> Outcome:
    if dm.values.get("Device.DeviceInfo.ActiveFirmwareImage") == image:
        return Outcome((COMMAND_FAILURE, f"{image} is the running image"))
    started = _now()
    dm.values[image + "Status"] = "Downloading"
    args = {
        "URL": inputs.get("URL", ""),
        "Username": inputs.get("Username", ""),
        "Password": inputs.get("Password", ""),
    }
    try:
        status, data = await cwmp_day2.http_transfer("GET", args)
    except (HttpError, OSError, ValueError) as exc:
        status, data = 0, str(exc).encode()
    if status != 200:
        dm.values[image + "Status"] = "DownloadFailed"
        why = f"HTTP {status}" if status else data.decode(errors="replace")
        return Outcome((COMMAND_FAILURE, f"download failed: {why}"), started=started)
    found = _VERSION.search(data[:4096])
    if found is None:
        dm.values[image + "Status"] = "ValidationFailed"
        return Outcome((COMMAND_FAILURE, "not a firmware image"), started=started)
    dm.values.update(
        {
            image + "Status": "Available",
            image + "Available": "true",
            image + "Version": found.group(1).decode(),
            image + "Name": urlsplit(args["URL"]).path.rsplit("/", 1)[-1],
        }
    )
    auto = inputs.get("AutoActivate", "").lower() in ("true", "1")
    return Outcome(activate=image if auto else None, started=started, completed=_now())


def activate(dm: DataModel, image: str) -> None:
    """Boot into ``image`` (the agent reboots right after)."""
    previous = dm.values.get("Device.DeviceInfo.ActiveFirmwareImage", "")
    if previous and previous != image and previous in dm.objects:
        dm.values[previous + "Status"] = "Available"
    dm.values[image + "Status"] = "Active"
    dm.values["Device.DeviceInfo.ActiveFirmwareImage"] = image
    dm.values["Device.DeviceInfo.BootFirmwareImage"] = image
    dm.values["Device.DeviceInfo.SoftwareVersion"] = dm.values[image + "Version"]


def transfer_complete(command: str, key: str, inputs: dict, outcome: Outcome) -> dict[str, str]:
    """The parameters of the TransferComplete! event of a Download()."""
    code, message = outcome.error or (0, "")
    return {
        "Command": command,
        "CommandKey": key,
        "Requestor": "",
        "TransferType": "Download",
        "Affected": command.rsplit(".", 1)[0] + ".",
        "TransferURL": inputs.get("URL", ""),
        "FaultCode": str(code),
        "FaultString": message,
        "StartTime": outcome.started or _now(),
        "CompleteTime": outcome.completed or _now(),
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
