"""Day-2 operations from the IDE's device page: reboot, factory reset, and a
firmware download from the file store, as short Lua scripts.

Each operation runs as a run of its own (started by the page, acting for the
person who clicked, audited like any run, listed on the device's page): the
same bindings, roles and limits as a script an Operator would write, over
CWMP (send_cwmp_message types 5, 6, 7) or USP (send_usp_message Operate).
"""

from __future__ import annotations

import json

OPERATIONS = {
    "reboot": "Reboot",
    "factory_reset": "Factory reset",
    "download": "Download firmware",
}

_CWMP = {
    "reboot": '<cwmp:Reboot><CommandKey>ide-reboot</CommandKey></cwmp:Reboot>", 5',
    "factory_reset": '<cwmp:FactoryReset/>", 6',
    "download": (
        '<cwmp:Download><CommandKey>ide-" .. args.file .. "</CommandKey>'
        "<FileType>1 Firmware Upgrade Image</FileType>"
        '<URL>store:" .. args.file .. "</URL><Username></Username><Password></Password>'
        "<FileSize>0</FileSize><TargetFileName></TargetFileName>"
        '<DelaySeconds>0</DelaySeconds></cwmp:Download>", 7'
    ),
}
_USP = {
    "reboot": '{body = {request = {operate = {command = "Device.Reboot()", '
    'command_key = "ide-reboot", send_resp = true}}}}',
    "factory_reset": '{body = {request = {operate = {command = "Device.FactoryReset()", '
    "send_resp = true}}}}",
}


class OperationError(ValueError):
    pass


def script(operation: str, device: dict) -> str:
    """The Lua of ``operation`` on ``device`` (a registry device table); its
    serial and the file name come as arguments."""
    if operation not in OPERATIONS:
        raise OperationError(f"unknown operation {operation!r}")
    if device.get("cwmp"):
        call = f'send_cwmp_message(args.serial, "{_CWMP[operation]})'
    elif device.get("usp") and operation in _USP:
        call = f"send_usp_message(args.serial, {_USP[operation]})"
    else:
        raise OperationError(f"{OPERATIONS[operation]} is not offered for this device")
    return (
        f"-- {OPERATIONS[operation]} of {json.dumps(device['sn'])}, from the device page\n"
        f"local r = {call}\n"
        'if type(r) == "table" and r.error_code then\n'
        '  error(r.error_code .. " " .. r.error_message)\nend\n'
        'print("done: " .. json_encode(r))\nreturn r\n'
    )
