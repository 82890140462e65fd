"""The editor's snippet gallery: scripts for the tasks people start from.

Each is plain Lua for the platform's API (every one passes the editor's check:
tests/ide/test_snippets.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Snippet:
    title: str
    doc: str
    code: str


SNIPPETS = (
    Snippet(
        "Read a parameter from every online device",
        "GetParameterValues on each online TR-069 device; one row per device.",
        """-- args.path: the parameter to read
local path = args.path or "Device.DeviceInfo.SoftwareVersion"
local rows = {}
for _, d in ipairs(get_all_devices()) do
  if d.status == 2 and d.cwmp then
    local answer = send_cwmp_message(d.sn, "<cwmp:GetParameterValues><ParameterNames><string>"
      .. path .. "</string></ParameterNames></cwmp:GetParameterValues>", 0)
    rows[#rows + 1] = {sn = d.sn, value = answer[path], error = answer.error_message}
  end
end
return rows
""",
    ),
    Snippet(
        "Set the Wi-Fi SSID of a device",
        "SetParameterValues of Device.WiFi.SSID.1.SSID (args.serial, args.ssid).",
        """local serial, ssid = args.serial, args.ssid
assert(serial and ssid, "give the arguments serial and ssid")
local answer = send_cwmp_message(serial, [[<cwmp:SetParameterValues><ParameterList>
  <ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name>
  <Value xsi:type="xsd:string">]] .. ssid .. [[</Value></ParameterValueStruct>
  </ParameterList><ParameterKey>ssid</ParameterKey></cwmp:SetParameterValues>]], 1)
if answer ~= true then error("not set: " .. tostring(answer.error_message)) end
log("info", "SSID of", serial, "is now", ssid)
return {sn = serial, ssid = ssid}
""",
    ),
    Snippet(
        "React to BOOT",
        "Runs on: each TR-069 BOOT event of any device calls the function.",
        """listen_to_cwmp_event("1 BOOT", nil, function(ev)
  local d = get_device(ev.serial_number)
  log("info", "boot of", ev.serial_number, d and d.version or "unknown version")
end)
print("listening for BOOT events")
""",
    ),
    Snippet(
        "Onboard new devices",
        "Each device seen for the first time gets its parameters read once.",
        """listen_to_new_device(function(d)
  log("info", "new device", d.sn, d.vendor, d.model)
  if d.cwmp then
    refresh_device_parameters(d.sn)
  end
end)
print("waiting for new devices")
""",
    ),
)


def snippet_entries() -> list[dict[str, Any]]:
    return [asdict(s) for s in SNIPPETS]
