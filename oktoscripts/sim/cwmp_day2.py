"""The day-2 RPCs of the simulated CPE: Reboot, FactoryReset, Download,
Upload, ScheduleInform, Get/SetParameterAttributes.

What the RPC asks is answered in the session; what it does happens after the
session, as on a real CPE: a reboot informs again with "1 BOOT" and
"M Reboot"; a factory reset forgets the credentials the ACS set and
bootstraps ("0 BOOTSTRAP"); a download fetches the file over HTTP(S) (with
the request's Username/Password, Basic or Digest), installs a firmware image
(its ``version=`` line becomes the SoftwareVersion) and reboots, then reports
with TransferComplete (fault 9010 when the file could not be fetched, 9018
when the image is not one); an upload PUTs a configuration file.

Firmware images the simulator accepts are text files with a line
``version=<SoftwareVersion>``, such as ``firmware_image("2.0.0")`` makes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from oktoscripts.cwmp.http11 import ClientConnection, HttpError
from oktoscripts.cwmp.httpauth import answer_challenge, basic_header
from oktoscripts.cwmp.xmlsafe import child, children, text
from oktoscripts.sim.datamodel import CwmpFault

if TYPE_CHECKING:
    from oktoscripts.sim.cwmp_cpe import SimulatedCpe

log = logging.getLogger(__name__)

UNKNOWN_TIME = "0001-01-01T00:00:00Z"
FIRMWARE = "1 Firmware Upgrade Image"
CONFIG = "3 Vendor Configuration File"
_VERSION = re.compile(rb"^version=(\S+)$", re.MULTILINE)
METHODS = (
    "Reboot",
    "FactoryReset",
    "Download",
    "Upload",
    "ScheduleInform",
    "GetParameterAttributes",
    "SetParameterAttributes",
)


def firmware_image(version: str, size: int = 4096) -> bytes:
    """A firmware image the simulated CPE installs: its version, then padding."""
    head = f"OKTOSIM FIRMWARE\nversion={version}\n".encode()
    return head + b"\0" * max(0, size - len(head))


@dataclass
class Transfer:
    command_key: str
    fault_code: int = 0
    fault_string: str = ""


def execute(cpe: SimulatedCpe, rpc: str, el: object) -> str:
    """The response element of a day-2 RPC; its effect is queued for after the session."""
    key = text(el, "CommandKey")
    if rpc == "Reboot":
        cpe.after_session.append(lambda: _reboot(cpe, "M Reboot", key))
        return "<cwmp:RebootResponse/>"
    if rpc == "FactoryReset":
        cpe.after_session.append(lambda: _factory_reset(cpe))
        return "<cwmp:FactoryResetResponse/>"
    if rpc in ("Download", "Upload"):
        args = {n: text(el, n) for n in ("URL", "Username", "Password", "FileType")}
        cpe.after_session.append(lambda: cpe.spawn(_transfer(cpe, rpc, key, args)))
        return (
            f"<cwmp:{rpc}Response><Status>1</Status><StartTime>{UNKNOWN_TIME}</StartTime>"
            f"<CompleteTime>{UNKNOWN_TIME}</CompleteTime></cwmp:{rpc}Response>"
        )
    if rpc == "ScheduleInform":
        delay = int(text(el, "DelaySeconds") or 0)
        cpe.after_session.append(lambda: cpe.spawn(_scheduled(cpe, delay, key)))
        return "<cwmp:ScheduleInformResponse/>"
    if rpc == "GetParameterAttributes":
        return _get_attributes(cpe, el)
    if rpc == "SetParameterAttributes":
        return _set_attributes(cpe, el)
    raise CwmpFault("9000", f"Method not supported: {rpc}")


def _reboot(cpe: SimulatedCpe, event: str, key: str) -> None:
    cpe.rebooted += 1
    cpe.add_event("1 BOOT")
    cpe.add_event(event, key)


def _factory_reset(cpe: SimulatedCpe) -> None:
    ms = cpe.dm.root + "ManagementServer."
    for name in (
        "ConnectionRequestUsername",
        "ConnectionRequestPassword",
        "Username",
        "Password",
        "ParameterKey",
    ):
        cpe.dm.params[ms + name].value = ""
    cpe.username, cpe.password = cpe.factory_credential
    cpe.attributes.clear()
    cpe.factory_resets += 1
    cpe.events = []
    cpe.add_event("0 BOOTSTRAP")
    cpe.add_event("1 BOOT")


async def _scheduled(cpe: SimulatedCpe, delay: int, key: str) -> None:
    await asyncio.sleep(delay)
    cpe.add_event("3 SCHEDULED")
    cpe.add_event("M ScheduleInform", key)


async def _transfer(cpe: SimulatedCpe, rpc: str, key: str, args: dict[str, str]) -> None:
    await asyncio.sleep(cpe.options.download_s)
    try:
        if rpc == "Download":
            fault = await _download(cpe, args)
        else:
            fault = await _upload(cpe, args)
    except (HttpError, OSError, ValueError) as exc:
        fault = ("9010" if rpc == "Download" else "9011", f"{rpc} failure: {exc}")
    cpe.transfers.append(Transfer(key, int(fault[0]), fault[1]) if fault else Transfer(key))
    cpe.add_event("7 TRANSFER COMPLETE")
    cpe.add_event(f"M {rpc}", key)
    if rpc == "Download" and not fault and args["FileType"] == FIRMWARE:
        _reboot(cpe, "M Download", key)  # a new image runs after a reboot


async def http_transfer(method: str, args: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    """(status, body) of ``method`` on args' URL, with its Username/Password (Basic, or
    Digest when challenged); the USP agent's firmware downloads use it too."""
    client = ClientConnection(args["URL"], timeout=30)
    try:
        headers = []
        if args["Username"]:
            headers.append(("Authorization", basic_header(args["Username"], args["Password"])))
        response = await client.request(method, headers, body)
        if response.status == 401 and args["Username"]:
            auth = answer_challenge(
                response.header("WWW-Authenticate"),
                args["Username"],
                args["Password"],
                method,
                client.path,
            )
            if auth:
                response = await client.request(method, [("Authorization", auth)], body)
        return response.status, response.body
    finally:
        await client.close()


async def _download(cpe: SimulatedCpe, args: dict[str, str]) -> tuple[str, str] | None:
    if cpe.options.quirk_download_fails:
        return "9010", "Download failure: the CPE could not store the file"
    status, data = await http_transfer("GET", args)
    if status != 200:
        return "9010", f"Download failure: HTTP {status}"
    if args["FileType"] == FIRMWARE:
        found = _VERSION.search(data[:4096])
        if found is None:
            return "9018", "File corrupted: not a firmware image"
        cpe.dm.params[cpe.dm.root + "DeviceInfo.SoftwareVersion"].value = found.group(1).decode()
    return None


async def _upload(cpe: SimulatedCpe, args: dict[str, str]) -> tuple[str, str] | None:
    body = "\n".join(
        f"{n}={p.value}" for n, p in sorted(cpe.dm.params.items()) if "Password" not in n
    ).encode()
    status, _ = await http_transfer("PUT", args, body)
    if status not in (200, 201, 204):
        return "9011", f"Upload failure: HTTP {status}"
    return None


def _matching(cpe: SimulatedCpe, name: str) -> list[str]:
    if name.endswith(".") or not name:
        found = [n for n in cpe.dm.params if n.startswith(name)]
    else:
        found = [name] if name in cpe.dm.params else []
    if not found:
        raise CwmpFault("9005", f"Invalid parameter name {name}")
    return found


def _get_attributes(cpe: SimulatedCpe, el: object) -> str:
    names_el = child(el, "ParameterNames")
    names = [text(s) for s in names_el] if names_el is not None else []
    structs = "".join(
        f"<ParameterAttributeStruct><Name>{escape(n)}</Name>"
        f"<Notification>{cpe.notification(n)}</Notification>"
        '<AccessList SOAP-ENC:arrayType="xsd:string[0]"></AccessList>'
        "</ParameterAttributeStruct>"
        for name in names
        for n in _matching(cpe, name)
    )
    return (
        f"<cwmp:GetParameterAttributesResponse><ParameterList>{structs}</ParameterList>"
        "</cwmp:GetParameterAttributesResponse>"
    )


def _set_attributes(cpe: SimulatedCpe, el: object) -> str:
    plist = child(el, "ParameterList")
    changes = []
    for struct in children(plist, "SetParameterAttributesStruct") if plist is not None else []:
        if text(struct, "NotificationChange").lower() in ("1", "true"):
            for n in _matching(cpe, text(struct, "Name")):
                changes.append((n, int(text(struct, "Notification") or 0)))
    cpe.attributes.update(changes)
    return "<cwmp:SetParameterAttributesResponse/>"
