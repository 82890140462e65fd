"""The day-2 RPCs: extension message types of send_cwmp_message (5 and up).

The Oktopus API's message types 0-4 (soap.MESSAGE_TYPES) are unchanged; these
add what operators need next, with the same payload rules (a whole envelope
or the RPC element) and the same error tables:

| type | RPC | result |
|---|---|---|
| 5 | Reboot | true |
| 6 | FactoryReset | true |
| 7 | Download | {status, start_time, complete_time}; see below |
| 8 | Upload | as Download |
| 9 | ScheduleInform | true |
| 10 | GetParameterAttributes | array of {name, notification, access_list} |
| 11 | SetParameterAttributes | true |
| 12 | GetRPCMethods | array of method names |

A Download or Upload the CPE answers with status 1 (it will do it later) is
answered only when its TransferComplete comes (matched by serial and
CommandKey): {status = 0, transfer_complete = true, command_key, start_time,
complete_time}, or the error table of its fault.

Requests keep scalar arguments in ``args`` (name -> text, in the order
TR-069 lists them) and structured ones in ``items``; this module reads them
from a script's payload, writes them for the CPE, and reads the responses.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from oktoscripts.cwmp.xmlsafe import child, children, int_text, text

EXTENSION_TYPES = {
    5: "Reboot",
    6: "FactoryReset",
    7: "Download",
    8: "Upload",
    9: "ScheduleInform",
    10: "GetParameterAttributes",
    11: "SetParameterAttributes",
    12: "GetRPCMethods",
}
TRANSFERS = ("Download", "Upload")
# The scalar arguments of each RPC, in TR-069's order (Annex A), and which must be given.
ARGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Reboot": (("CommandKey",), ()),
    "FactoryReset": ((), ()),
    "Download": (
        (
            "CommandKey",
            "FileType",
            "URL",
            "Username",
            "Password",
            "FileSize",
            "TargetFileName",
            "DelaySeconds",
            "SuccessURL",
            "FailureURL",
        ),
        ("FileType", "URL"),
    ),
    "Upload": (
        ("CommandKey", "FileType", "URL", "Username", "Password", "DelaySeconds"),
        ("FileType", "URL"),
    ),
    "ScheduleInform": (("DelaySeconds", "CommandKey"), ("DelaySeconds",)),
    "GetParameterAttributes": ((), ()),
    "SetParameterAttributes": ((), ()),
    "GetRPCMethods": ((), ()),
}
UNSIGNED = {"FileSize", "DelaySeconds"}
RESPONSES = frozenset(method + "Response" for method in EXTENSION_TYPES.values())


class PayloadError(ValueError):
    pass


def read(el: etree._Element, method: str) -> tuple[dict[str, str], list[Any]]:
    """(args, items) of a script's ``method`` element; PayloadError says what is wrong."""
    names, required = ARGS[method]
    args = {name: text(el, name) for name in names}
    for name in required:
        if not args[name]:
            raise PayloadError(f"{method} needs {name}")
    for name in UNSIGNED & set(names):
        if args[name] and not args[name].isdigit():
            raise PayloadError(f"{method}: {name} must be an unsigned integer")
    if method in TRANSFERS and not args["URL"].startswith(("http://", "https://")):
        if not (method == "Download" and args["URL"].startswith("store:")):
            raise PayloadError(
                f"{method}: URL must be http://, https:// or (Download) "
                "store:<name of a stored file>"
            )
    items: list[Any] = []
    if method == "GetParameterAttributes":
        names_el = child(el, "ParameterNames")
        if names_el is None:
            raise PayloadError("GetParameterAttributes needs ParameterNames")
        items = [text(s) for s in names_el if isinstance(s.tag, str) and text(s)]
    elif method == "SetParameterAttributes":
        items = _attribute_changes(el)
    return args, items


def _attribute_changes(el: etree._Element) -> list[dict[str, Any]]:
    plist = child(el, "ParameterList")
    structs = children(plist, "SetParameterAttributesStruct") if plist is not None else []
    if not structs:
        raise PayloadError("SetParameterAttributes needs SetParameterAttributesStruct items")
    changes = []
    for struct in structs:
        name = text(struct, "Name")
        notification = text(struct, "Notification") or "0"
        if not name or notification not in ("0", "1", "2"):
            raise PayloadError(
                "each SetParameterAttributesStruct needs a Name and a Notification of 0, 1 or 2"
            )
        access = child(struct, "AccessList")
        changes.append(
            {
                "name": name,
                "notification_change": _flag(text(struct, "NotificationChange")),
                "notification": int(notification),
                "access_list_change": _flag(text(struct, "AccessListChange")),
                "access_list": [text(s) for s in access if isinstance(s.tag, str)]
                if access is not None
                else [],
            }
        )
    return changes


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true")


def body(method: str, args: dict[str, str], items: list[Any]) -> str:
    """The RPC element the ACS sends."""
    names, _ = ARGS[method]
    inner = "".join(f"<{n}>{escape(args.get(n, '') or _default(n))}</{n}>" for n in names)
    if method == "GetParameterAttributes":
        strings = "".join(f"<string>{escape(n)}</string>" for n in items)
        inner = (
            f'<ParameterNames soap-enc:arrayType="xsd:string[{len(items)}]">{strings}'
            "</ParameterNames>"
        )
    elif method == "SetParameterAttributes":
        inner = (
            f'<ParameterList soap-enc:arrayType="cwmp:SetParameterAttributesStruct'
            f'[{len(items)}]">' + "".join(_attribute_struct(c) for c in items) + "</ParameterList>"
        )
    return f"<cwmp:{method}>{inner}</cwmp:{method}>"


def _default(name: str) -> str:
    return "0" if name in UNSIGNED else ""


def _attribute_struct(change: dict[str, Any]) -> str:
    access = "".join(f"<string>{escape(a)}</string>" for a in change["access_list"])
    return (
        f"<SetParameterAttributesStruct><Name>{escape(change['name'])}</Name>"
        f"<NotificationChange>{int(change['notification_change'])}</NotificationChange>"
        f"<Notification>{change['notification']}</Notification>"
        f"<AccessListChange>{int(change['access_list_change'])}</AccessListChange>"
        f'<AccessList soap-enc:arrayType="xsd:string[{len(change["access_list"])}]">'
        f"{access}</AccessList></SetParameterAttributesStruct>"
    )


def parse_response(rpc: str, el: etree._Element) -> Any:
    """The result of one of RESPONSES."""
    if rpc in ("DownloadResponse", "UploadResponse"):
        return {
            "status": int_text(el, "Status", 0),
            "start_time": text(el, "StartTime"),
            "complete_time": text(el, "CompleteTime"),
        }
    if rpc == "GetParameterAttributesResponse":
        plist = child(el, "ParameterList")
        out = []
        for struct in children(plist, "ParameterAttributeStruct") if plist is not None else []:
            access = child(struct, "AccessList")
            out.append(
                {
                    "name": text(struct, "Name"),
                    "notification": int_text(struct, "Notification", 0),
                    "access_list": [text(s) for s in access if isinstance(s.tag, str)]
                    if access is not None
                    else [],
                }
            )
        return out
    if rpc == "GetRPCMethodsResponse":
        methods = child(el, "MethodList")
        return [text(s) for s in methods if isinstance(s.tag, str)] if methods is not None else []
    return True  # Reboot, FactoryReset, ScheduleInform, SetParameterAttributes: done


def waits_for_transfer(method: str, result: Any) -> bool:
    """A Download/Upload the CPE will finish later: its TransferComplete is the answer."""
    return method in TRANSFERS and isinstance(result, dict) and result.get("status") == 1
