"""A USP firmware upgrade from Lua, end to end: send_usp_message Operate of
Device.DeviceInfo.FirmwareImage.{i}.Download() on the simulated agent, which
fetches the image over HTTP, reports OperationComplete and TransferComplete!,
reboots into it (AutoActivate) and comes back with the new SoftwareVersion."""

from __future__ import annotations

import asyncio
import json

import pytest

from oktoscripts.sim.cwmp_day2 import firmware_image
from oktoscripts.usp import bus

from ..http_files import serve_files

UPGRADE = r"""
local sn, url = args.sn, args.url
local function get(path)
  local r = send_usp_message(sn, {body = {request = {get = {param_paths = {path}}}}})
  return r[path]
end
-- Ask for the TransferComplete! event too (the agent sends it to whoever subscribed).
send_usp_message(sn, {body = {request = {add = {allow_partial = false, create_objs = {{
  obj_path = "Device.LocalAgent.Subscription.", param_settings = {
    {param = "ID", value = "fw-transfers", required = true},
    {param = "NotifType", value = "Event", required = true},
    {param = "ReferenceList", value = "Device.LocalAgent.TransferComplete!", required = true},
    {param = "Enable", value = "true", required = true}}}}}}}})
local started = send_usp_message(sn, {body = {request = {operate = {
  command = "Device.DeviceInfo.FirmwareImage.2.Download()", command_key = "fw-5.0.0",
  send_resp = true, input_args = {URL = url .. "/fw-5.0.0.bin", AutoActivate = "true"}}}}})
-- The agent downloads, then reboots into the image: its Boot! event tells
-- the platform the new version.
local version
for _ = 1, 400 do
  version = get_device(sn).version
  if version == "5.0.0" then break end
  sleep(0.05)
end
local bad = send_usp_message(sn, {body = {request = {operate = {
  command = "Device.DeviceInfo.FirmwareImage.1.Download()", command_key = "junk",
  send_resp = true, input_args = {URL = url .. "/junk.bin"}}}}})
local status
for _ = 1, 200 do
  status = get("Device.DeviceInfo.FirmwareImage.1.Status")
  if status:find("Failed") then break end
  sleep(0.05)
end
return {started = started, version = version, bad = bad, bad_status = status,
  active = get("Device.DeviceInfo.ActiveFirmwareImage"),
  image_version = get("Device.DeviceInfo.FirmwareImage.2.Version"),
  image_status = get("Device.DeviceInfo.FirmwareImage.2.Status")}
"""


@pytest.fixture
async def firmware_url():
    """An HTTP server with a firmware image at /fw-5.0.0.bin and a file that is
    not one at /junk.bin."""
    files = {"/fw-5.0.0.bin": firmware_image("5.0.0"), "/junk.bin": b"not firmware\n" * 100}
    async with serve_files(files) as base:
        yield base


async def test_a_firmware_download_operate_upgrades_the_agent(usp, firmware_url):
    agent = await usp.start_agent("fw")
    eid = agent.config.endpoint_id
    seen: list[dict] = []

    async def collect(msg) -> None:  # noqa: ANN001
        note = json.loads(msg.data)
        if note["endpoint_id"] == eid:
            seen.append(note)

    sub = await usp.nc.subscribe(bus.notify_subject(), cb=collect)
    try:
        outcome, _ = await usp.run(UPGRADE, args={"sn": eid, "url": firmware_url}, wall=60)
        assert outcome.status == "succeeded", outcome.error
        result = outcome.result
        assert result["started"] == {"req_obj_path": "Device.LocalAgent.Request.1."}
        assert result["version"] == "5.0.0"
        assert result["active"] == "Device.DeviceInfo.FirmwareImage.2."
        assert (result["image_version"], result["image_status"]) == ("5.0.0", "Active")
        assert "req_obj_path" in result["bad"]
        assert result["bad_status"] == "ValidationFailed"
        await usp.wait_device(eid, lambda d: d.get("version") == "5.0.0")

        def events(kind: str, name: str = "") -> list[dict]:
            return [
                n["notification"]
                for n in seen
                if n["type"] == kind and (not name or n["notification"].get("event_name") == name)
            ]

        for _ in range(100):  # the last notifications may still be on their way
            if len(events("oper_complete")) >= 2 and len(events("event", "Boot!")) >= 1:
                break
            await asyncio.sleep(0.05)
        done, failed = events("oper_complete")[:2]
        assert done["command_name"] == "Download()" and done["command_key"] == "fw-5.0.0"
        assert "req_output_args" in done
        assert failed["command_key"] == "junk"
        assert failed["cmd_failure"]["err_msg"] == "not a firmware image"
        transfers = events("event", "TransferComplete!")
        assert [t["params"]["CommandKey"] for t in transfers] == ["fw-5.0.0", "junk"]
        assert transfers[0]["params"]["FaultCode"] == "0"
        assert transfers[1]["params"]["FaultCode"] == "7022"
        boot = events("event", "Boot!")[-1]["params"]
        assert boot["CommandKey"] == "fw-5.0.0" and boot["FirmwareUpdated"] == "true"
    finally:
        await sub.unsubscribe()
