"""The Lua API reference, from the binding declarations: one source for
docs/lua-api.md and the IDE's reference page.

The functions, their parameters, return shapes and one-line docs come from
the registry (``oktoscripts.lua.binding``); this module adds what a
declaration does not hold: an example for every function and for every
message type a script can send, and the rules shared by all functions.
tests/test_docs.py checks that every function and message type has its
example, that the examples parse, and that docs/lua-api.md is what
``python -m oktoscripts.bindings.reference`` writes now.

    python -m oktoscripts.bindings.reference          # rewrite docs/lua-api.md
    python -m oktoscripts.bindings.reference --check  # exit 1 if it is stale
"""

from __future__ import annotations

import sys
from itertools import groupby
from pathlib import Path
from typing import Any

from oktoscripts.bindings import all_bindings, devices
from oktoscripts.lua.binding import CATEGORIES, Binding

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "lua-api.md"

SECTION_TITLES = {
    "devices": "Devices",
    "cwmp": "TR-069 (CWMP)",
    "usp": "TR-369 (USP)",
    "events": "Events",
    "util": "Utilities",
}

RULES = (
    "Scripts are Lua 5.1 chunks. A chunk runs from top to bottom; what it returns "
    "becomes the run's result (stored as JSON).",
    "A wrong argument is a Lua error at the caller's line, naming the function, the "
    "argument and what it got: `myscript:4: send_cwmp_message: argument #3 (message "
    'type) must be an integer 0-4, got "x"`. `pcall` catches it like any Lua error.',
    "A failure of a device or of the network is not an error: the function returns an "
    "error table, so a script can test for it. An error table has `error_code` (a "
    "string) and `error_message`.",
    "`error_code` is the device's own code when it gave one (a TR-069 fault such as "
    '`"9005"`, a USP error such as `"7004"`), else one of the platform\'s: `"404"` '
    'unknown device, `"408"` no answer in time, `"409"` device busy, `"503"` '
    'device offline, `"500"` anything else.',
    "Functions marked *waits* suspend the script while the device, the timer or the "
    "event source works; other runs go on meanwhile. They stop when the run is "
    "cancelled or reaches its time limit, and they work inside `pcall`, `xpcall` and "
    "coroutines.",
    "A function marked with a permission refuses (a Lua error saying why) when the "
    "run acts for someone whose role lacks it.",
    "A script that starts a listener keeps running after its last line, handling "
    "events, until it is stopped; meanwhile its run is *listening*.",
)

# One example per function: what a script writes, and what it gets.
EXAMPLES: dict[str, str] = {
    "get_device": """local d = get_device("CPE0001")
if not d then
  print("no such device")
elseif d.status == 2 then
  print(d.vendor, d.model, "runs", d.version)
end""",
    "get_all_devices": """local online = 0
for _, d in ipairs(get_all_devices()) do
  if d.status == 2 then online = online + 1 end
end
return {online = online}""",
    "delete_device": """if delete_device("CPE-RETIRED-7") then
  log("info", "removed CPE-RETIRED-7")
end""",
    "refresh_device_parameters": """if refresh_device_parameters("CPE0001") then
  local d = get_device("CPE0001")
  for path, value in pairs(d.params) do print(path, value) end
end""",
    "listen_to_new_device": """listen_to_new_device(function(d)
  log("info", "new device", d.sn, d.cwmp and "over TR-069" or "over TR-369")
end)""",
    "create_or_update_device_credential": """-- Logging in as CPE0001 with this password,
-- a CPE speaks for device CPE0001.
local ok = create_or_update_device_credential("CPE0001", generate_random_string(20))
-- A shared credential for three agents:
create_or_update_device_credential("lab-agents", "s3cret-pass",
  {"os::00D09E-lab-1", "os::00D09E-lab-2", "os::00D09E-lab-3"})""",
    "send_cwmp_message": """local r = send_cwmp_message("CPE0001", [[
<cwmp:GetParameterValues><ParameterNames>
  <string>InternetGatewayDevice.DeviceInfo.SoftwareVersion</string>
</ParameterNames></cwmp:GetParameterValues>]], 0)
if r.error_code then
  print("failed:", r.error_code, r.error_message)
else
  print(r["InternetGatewayDevice.DeviceInfo.SoftwareVersion"])
end""",
    "send_cwmp_async_message": """-- Waits for the CPE's next Inform (a CPE behind NAT);
-- gives "408" when the run's time is up first.
local r = send_cwmp_async_message("CPE0001", [[
<cwmp:GetParameterNames><ParameterPath>Device.WiFi.</ParameterPath>
<NextLevel>true</NextLevel></cwmp:GetParameterNames>]], 4)
if not r.error_code then
  for _, name in ipairs(r) do print(name) end
end""",
    "listen_to_cwmp_event": """-- Every BOOT of any CPE, two callbacks at a time.
listen_to_cwmp_event("1", "*", function(ev)
  log("info", ev.serial_number, "booted at", ev.timestamp)
end, 2)""",
    "send_usp_message": """local r = send_usp_message("os::00D09E-sim-1", {
  header = {msg_type = "GET"},
  body = {request = {get = {param_paths = {"Device.DeviceInfo.SoftwareVersion"}}}},
})
if r.error_code then
  print("failed:", r.error_code, r.error_message)
else
  print(r["Device.DeviceInfo.SoftwareVersion"])
end""",
    "sleep": """for attempt = 1, 3 do
  if get_device("CPE0001").status == 2 then break end
  sleep(0.5)
end""",
    "generate_random_string": """local password = generate_random_string(16)
print(#password)  --> 16""",
    "json_encode": """print(json_encode({sn = "CPE0001", ports = {1, 2}}))
--> {"ports":[1,2],"sn":"CPE0001"} (object keys in any order)""",
    "json_decode": """local value, err = json_decode('{"ok": true, "n": [1, 2]}')
if value then print(value.ok, value.n[2]) else print("bad JSON:", err) end""",
    "log": """log("warn", "CPE0001 answered slowly:", 4.2, "s")
log("debug", {step = 3})  -- tables are written as JSON""",
}

# send_cwmp_message and send_cwmp_async_message: argument #3 and its answer.
CWMP_MESSAGES: tuple[dict[str, str], ...] = (
    {
        "number": "0",
        "name": "GetParameterValues",
        "returns": '`{[full path] = "value", ...}`; a partial path (ending in `.`) gives '
        "every parameter below it",
        "payload": """<cwmp:GetParameterValues><ParameterNames>
  <string>Device.DeviceInfo.UpTime</string>
  <string>Device.ManagementServer.</string>
</ParameterNames></cwmp:GetParameterValues>""",
    },
    {
        "number": "1",
        "name": "SetParameterValues",
        "returns": "`true` (the CPE applied it, now or after a reboot); a fault gives the "
        "error table with `parameter_faults`",
        "payload": """<cwmp:SetParameterValues><ParameterList>
  <ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name>
    <Value xsi:type="xsd:string">guest</Value></ParameterValueStruct>
</ParameterList><ParameterKey>ssid-change</ParameterKey></cwmp:SetParameterValues>""",
    },
    {
        "number": "2",
        "name": "AddObject",
        "returns": "`{instance_number = 3, status = 0}`",
        "payload": """<cwmp:AddObject><ObjectName>Device.NAT.PortMapping.</ObjectName>
<ParameterKey></ParameterKey></cwmp:AddObject>""",
    },
    {
        "number": "3",
        "name": "DeleteObject",
        "returns": "`true`",
        "payload": """<cwmp:DeleteObject><ObjectName>Device.NAT.PortMapping.3.</ObjectName>
<ParameterKey></ParameterKey></cwmp:DeleteObject>""",
    },
    {
        "number": "4",
        "name": "GetParameterNames",
        "returns": "an array of full parameter names",
        "payload": """<cwmp:GetParameterNames><ParameterPath>Device.DeviceInfo.</ParameterPath>
<NextLevel>true</NextLevel></cwmp:GetParameterNames>""",
    },
    # Extensions beyond the Oktopus API's five (oktoscripts/cwmp/day2.py).
    {
        "number": "5",
        "name": "Reboot",
        "returns": "`true`; the CPE informs again with `1 BOOT` and `M Reboot`",
        "payload": "<cwmp:Reboot><CommandKey>reboot-1</CommandKey></cwmp:Reboot>",
    },
    {
        "number": "6",
        "name": "FactoryReset",
        "returns": "`true`; the CPE bootstraps (`0 BOOTSTRAP`) and is provisioned again",
        "payload": "<cwmp:FactoryReset/>",
    },
    {
        "number": "7",
        "name": "Download",
        "returns": "once the CPE's TransferComplete came: `{status = 0, transfer_complete = "
        "true, command_key, start_time, complete_time}`, or its fault's error "
        "table; `store:<name>` is a file of the Files page, sent as a signed URL",
        "payload": """<cwmp:Download><CommandKey>fw-2.0</CommandKey>
<FileType>1 Firmware Upgrade Image</FileType><URL>store:fw-2.0.bin</URL>
<Username></Username><Password></Password><FileSize>0</FileSize>
<TargetFileName></TargetFileName><DelaySeconds>0</DelaySeconds></cwmp:Download>""",
    },
    {
        "number": "8",
        "name": "Upload",
        "returns": "as Download",
        "payload": """<cwmp:Upload><CommandKey>cfg-1</CommandKey>
<FileType>1 Vendor Configuration File</FileType><URL>https://files.example.net/up</URL>
<Username></Username><Password></Password><DelaySeconds>0</DelaySeconds></cwmp:Upload>""",
    },
    {
        "number": "9",
        "name": "ScheduleInform",
        "returns": "`true`; the CPE informs with `3 SCHEDULED` after the delay",
        "payload": """<cwmp:ScheduleInform><DelaySeconds>60</DelaySeconds>
<CommandKey>later</CommandKey></cwmp:ScheduleInform>""",
    },
    {
        "number": "10",
        "name": "GetParameterAttributes",
        "returns": "`{{name, notification, access_list}, ...}`",
        "payload": """<cwmp:GetParameterAttributes><ParameterNames>
  <string>Device.WiFi.SSID.1.SSID</string>
</ParameterNames></cwmp:GetParameterAttributes>""",
    },
    {
        "number": "11",
        "name": "SetParameterAttributes",
        "returns": "`true`; notification 2 (active) makes changes reach "
        "`listen_to_cwmp_event` as `4 VALUE CHANGE`, 0 silences them",
        "payload": """<cwmp:SetParameterAttributes><ParameterList>
  <SetParameterAttributesStruct><Name>Device.WiFi.SSID.1.SSID</Name>
    <NotificationChange>1</NotificationChange><Notification>2</Notification>
    <AccessListChange>0</AccessListChange><AccessList/></SetParameterAttributesStruct>
</ParameterList></cwmp:SetParameterAttributes>""",
    },
    {
        "number": "12",
        "name": "GetRPCMethods",
        "returns": "an array of the RPC names the CPE supports",
        "payload": "<cwmp:GetRPCMethods/>",
    },
)

CWMP_FAILURE = (
    "On failure both functions return the error table. A SOAP Fault of the CPE gives "
    "its FaultCode as `error_code`, its FaultString as `error_message`, the response "
    "XML as `raw_response` and, for SetParameterValues, `parameter_faults = "
    "{{parameter_name, fault_code, fault_string}, ...}`. The payload may be the whole "
    "SOAP envelope or just the RPC element; the `cwmp:` prefix needs no declaration."
)

# send_usp_message: a payload (the USP Msg in protobuf's JSON mapping) per request.
USP_FIRMWARE_EXAMPLE = """Day-2 operations are Operate requests: `Device.Reboot()` and
`Device.FactoryReset()` answer `{}` at once, then the agent boots again (a
`Boot!` event with the command key). A firmware upgrade is the asynchronous
`Device.DeviceInfo.FirmwareImage.{i}.Download()` into an image slot that is not
running; its OperationComplete notification (and, for subscribers, the
`Device.LocalAgent.TransferComplete!` event) follows, and with `AutoActivate` the
agent reboots into the image, whose version its `Boot!` event reports:

```lua
local sn, version = args.serial, "5.0.0"
local started = send_usp_message(sn, {body = {request = {operate = {
  command = "Device.DeviceInfo.FirmwareImage.2.Download()", command_key = "fw-" .. version,
  send_resp = true, input_args = {URL = "https://files.example.net/fw-" .. version .. ".bin",
  AutoActivate = "true"}}}}})
if started.error_code then error(started.error_message) end  -- else {req_obj_path = ...}
for _ = 1, 300 do  -- the platform learns the new version from the agent's Boot! event
  if get_device(sn).version == version then return version end
  sleep(1)
end
local status = send_usp_message(sn, {body = {request = {get = {param_paths = {
  "Device.DeviceInfo.FirmwareImage.2.Status"}}}}})
error("not upgraded: image " .. tostring(status["Device.DeviceInfo.FirmwareImage.2.Status"]))
```

Without `AutoActivate`, `FirmwareImage.{i}.Activate()` reboots into a downloaded image
later. A failed download leaves the image's Status `DownloadFailed` or
`ValidationFailed` and its OperationComplete carries the command failure."""

USP_MESSAGES: tuple[dict[str, str], ...] = (
    {
        "kind": "get",
        "name": "Get",
        "returns": '`{[full path] = "value", ...}` over every resolved path; a search '
        "path matching nothing gives `{}`",
        "payload": '{"header": {"msg_id": "42", "msg_type": "GET"},\n'
        ' "body": {"request": {"get": {"paramPaths": ["Device.DeviceInfo."],'
        ' "maxDepth": 1}}}}',
    },
    {
        "kind": "set",
        "name": "Set",
        "returns": '`{[full path] = "new value", ...}` for every updated parameter',
        "payload": '{"body": {"request": {"set": {"allowPartial": false, "updateObjs": [\n'
        '  {"objPath": "Device.WiFi.SSID.1.", "paramSettings": [\n'
        '    {"param": "SSID", "value": "guest", "required": true}]}]}}}}',
    },
    {
        "kind": "add",
        "name": "Add",
        "returns": '`{{instantiated_path = "Device.NAT.PortMapping.4.", unique_keys = '
        '{...}, requested_path = "..."}, ...}`',
        "payload": '{"body": {"request": {"add": {"allowPartial": false, "createObjs": [\n'
        '  {"objPath": "Device.NAT.PortMapping.", "paramSettings": [\n'
        '    {"param": "ExternalPort", "value": "8080", "required": true}]}]}}}}',
    },
    {
        "kind": "delete",
        "name": "Delete",
        "returns": "an array of every deleted path",
        "payload": '{"body": {"request": {"delete": {"allowPartial": false,\n'
        '  "objPaths": ["Device.NAT.PortMapping.4."]}}}}',
    },
    {
        "kind": "operate",
        "name": "Operate",
        "returns": 'the command\'s output arguments; `{req_obj_path = "..."}` for an '
        "asynchronous command; `{}` when `send_resp` is false",
        "payload": '{"body": {"request": {"operate": {"command": "Device.Reboot()",\n'
        '  "commandKey": "maintenance", "sendResp": true}}}}',
        "more": USP_FIRMWARE_EXAMPLE,
    },
    {
        "kind": "get_instances",
        "name": "GetInstances",
        "returns": '`{{instantiated_obj_path = "...", unique_keys = {...}}, ...}`',
        "payload": '{"body": {"request": {"getInstances": {"objPaths": ["Device.IP.Interface."],'
        '\n  "firstLevelOnly": true}}}}',
    },
    {
        "kind": "get_supported_dm",
        "name": "GetSupportedDM",
        "returns": "`{[object path] = {access, is_multi_instance, params = {...}, "
        "commands = {...}, events = {...}}}`",
        "payload": '{"body": {"request": {"getSupportedDm": {"objPaths": ["Device.WiFi."],\n'
        '  "firstLevelOnly": true, "returnParams": true}}}}',
    },
    {
        "kind": "get_supported_protocol",
        "name": "GetSupportedProtocol",
        "returns": '`{agent_supported_protocol_versions = "1.0,1.3"}`',
        "payload": '{"body": {"request": {"getSupportedProtocol":\n'
        '  {"controllerSupportedProtocolVersions": "1.3"}}}}',
    },
)

USP_NOTES = (
    "The payload is a JSON string or a Lua table holding a USP Msg in protobuf's JSON "
    "mapping: field names in either spelling (`paramPaths` or `param_paths`), "
    "`msg_type` as a name or a number. Without `header`, the platform fills `msg_id` "
    "(unique) and `msg_type` (from the request). The response is matched to the "
    "request by `msg_id`. On failure the error table has `param_errs = {{param_path, "
    "err_code, err_msg}, ...}`; a path that failed inside an otherwise successful "
    "response makes the whole result that error table."
)

# The device table's fields, as get_device and get_all_devices declare them.
DEVICE_FIELDS: tuple[tuple[str, str, str], ...] = tuple(
    (f.name, f.type, f.doc) for f in devices.DEVICE_FIELDS
)

CWMP_EVENTS = (
    ("0", "BOOTSTRAP"),
    ("1", "BOOT"),
    ("2", "PERIODIC"),
    ("3", "SCHEDULED"),
    ("4", "VALUE CHANGE"),
    ("5", "KICKED"),
    ("6", "CONNECTION REQUEST"),
    ("7", "TRANSFER COMPLETE"),
    ("8", "DIAGNOSTICS COMPLETE"),
    ("9", "REQUEST DOWNLOAD"),
    ("10", "AUTONOMOUS TRANSFER COMPLETE"),
    ("11", "DU STATE CHANGE COMPLETE"),
    ("12", "AUTONOMOUS DU STATE CHANGE COMPLETE"),
)

SANDBOX = (
    "Available: the Lua 5.1 base functions, `string`, `table`, `math`, `coroutine`, "
    "`os.time`, `os.clock`, `os.date`, `os.difftime`, `debug.traceback`, "
    '`collectgarbage("count")`, `load`/`loadstring` of source text, and '
    "`setfenv`/`getfenv` on the script's own functions. Not available: `io`, "
    "`require`, `package`, `module`, `dofile`, `loadfile`, bytecode, `string.dump`, "
    "the rest of `os` and `debug`, and anything of Python. The arguments of a run "
    "arrive as the chunk's `...` (one table) and as the global `args`. Limits "
    "(instructions, memory, wall-clock time, output) end the run as *limit exceeded*, "
    "with a message naming the limit and the line."
)


# ---------------------------------------------------------------- the structure


def entry(b: Binding) -> dict[str, Any]:
    """One function as plain data, its example included: what the reference
    shows and what the editor completes, hovers and checks arguments with."""
    return {
        "name": b.name,
        "signature": b.signature,
        "returns": b.returns,
        "doc": b.doc,
        "category": b.category,
        "waits": bool(b.waits),
        "permission": b.permission or "",
        "params": [
            {"name": p.name, "type": p.type, "optional": p.optional, "doc": p.doc} for p in b.params
        ],
        # The fields of the table it returns (d. after local d = get_device(...)).
        "fields": [{"name": f.name, "type": f.type, "doc": f.doc} for f in b.fields],
        "example": EXAMPLES.get(b.name, ""),
    }


def sections() -> list[dict[str, Any]]:
    """The functions by category, in the order of CATEGORIES, by name inside one."""
    order = {c: i for i, c in enumerate(CATEGORIES)}
    bindings = sorted(all_bindings(), key=lambda b: (order.get(b.category, 99), b.name))
    return [
        {
            "id": category,
            "title": SECTION_TITLES.get(category, category),
            "bindings": [entry(b) for b in items],
        }
        for category, items in groupby(bindings, key=lambda b: b.category)
    ]


def reference() -> dict[str, Any]:
    """Everything the reference shows: the IDE page renders it, markdown() writes it."""
    return {
        "rules": RULES,
        "sections": sections(),
        "device_fields": DEVICE_FIELDS,
        "cwmp_messages": CWMP_MESSAGES,
        "cwmp_failure": CWMP_FAILURE,
        "cwmp_events": CWMP_EVENTS,
        "usp_messages": USP_MESSAGES,
        "usp_notes": USP_NOTES,
        "sandbox": SANDBOX,
    }


# ---------------------------------------------------------------- markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _function(b: dict[str, Any]) -> list[str]:
    marks = ["*waits*"] if b["waits"] else []
    if b["permission"] and b["permission"] not in b["doc"]:
        marks.append(f"needs the permission `{b['permission']}`")
    lines = [f"### `{b['signature']}`", "", b["doc"], ""]
    if marks:
        lines += [" · ".join(marks), ""]
    lines += [f"Returns: {b['returns']}", ""]
    if b["params"]:
        lines += ["| parameter | type | |", "|---|---|---|"]
        for p in b["params"]:
            kind = p["type"] + (", optional" if p["optional"] else "")
            lines.append(f"| `{p['name']}` | {kind} | {_cell(p['doc'])} |")
        lines.append("")
    lines += ["```lua", b["example"], "```", ""]
    return lines


def markdown(ref: dict[str, Any] | None = None) -> str:
    """docs/lua-api.md."""
    ref = ref or reference()
    out = [
        "# The Lua API",
        "",
        "<!-- Generated by `python -m oktoscripts.bindings.reference` from the binding",
        "declarations (oktoscripts/bindings) and oktoscripts/bindings/reference.py;",
        "edit those, then run it. tests/test_docs.py fails when this file is stale. -->",
        "",
        "The functions every script can call. They keep the names, arguments and "
        "return values of the Oktopus platform's Lua API, so its scripts run unchanged. "
        "The IDE shows this same reference at `/reference/`.",
        "",
        "## Rules for every function",
        "",
        *(f"- {rule}" for rule in ref["rules"]),
        "",
    ]
    for section in ref["sections"]:
        out += [f"## {section['title']}", ""]
        if section["id"] == "devices":
            out += ["A device table:", "", "| key | type | meaning |", "|---|---|---|"]
            out += [f"| `{k}` | {t} | {_cell(m)} |" for k, t, m in ref["device_fields"]]
            out.append("")
        for b in section["bindings"]:
            out += _function(b)
        if section["id"] == "cwmp":
            out += _cwmp_messages(ref)
        if section["id"] == "usp":
            out += _usp_messages(ref)
    out += ["## The sandbox", "", ref["sandbox"], ""]
    return "\n".join(out)


def _cwmp_messages(ref: dict[str, Any]) -> list[str]:
    out = [
        "### CWMP message types",
        "",
        "Argument #3 of `send_cwmp_message` and `send_cwmp_async_message`:",
        "",
    ]
    for m in ref["cwmp_messages"]:
        out += [
            f"#### {m['number']}: {m['name']}",
            "",
            f"Returns: {m['returns']}.",
            "",
            "```xml",
            m["payload"],
            "```",
            "",
        ]
    out += [
        ref["cwmp_failure"],
        "",
        "### CWMP events",
        "",
        "The `event` filter of `listen_to_cwmp_event` takes the number, the full code "
        '(`"1 BOOT"`), an M-code (`"M Reboot"`), or `"*"`/nil for every event. '
        "An Inform with several events calls the callback once per event.",
        "",
        "| code | event |",
        "|---|---|",
    ]
    out += [f"| `{n}` | {name} |" for n, name in ref["cwmp_events"]]
    return [*out, ""]


def _usp_messages(ref: dict[str, Any]) -> list[str]:
    out = ["### USP message types", "", ref["usp_notes"], ""]
    for m in ref["usp_messages"]:
        out += [
            f"#### {m['name']}",
            "",
            f"Returns: {m['returns']}.",
            "",
            "```json",
            m["payload"],
            "```",
            "",
        ]
        if m.get("more"):
            out += [m["more"], ""]
    return out


def main(argv: list[str]) -> int:
    text = markdown()
    if "--check" in argv:
        if not DOC_PATH.exists() or DOC_PATH.read_text() != text:
            print(f"{DOC_PATH} is stale: run python -m oktoscripts.bindings.reference")
            return 1
        return 0
    DOC_PATH.parent.mkdir(exist_ok=True)
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
