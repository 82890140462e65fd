"""Day-2 RPCs from Lua (send_cwmp_message types 5 and up) against simulated
CPEs: reboots, factory resets, firmware downloads answered with their
TransferComplete, notification attributes, GetRPCMethods."""

from __future__ import annotations

import asyncio

import pytest

from oktoscripts.bindings.services import Services
from oktoscripts.cwmp.http11 import Response, ServerConnection
from oktoscripts.devices.registry import DeviceRegistry
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun
from oktoscripts.sim.cwmp_day2 import firmware_image

from ..http_files import serve_files
from .conftest import eventually


@pytest.fixture
def services(nc, mongo_db):
    return Services(nats=nc, mongo=mongo_db, devices=DeviceRegistry(mongo_db))


async def _cpe(fleet_factory, **options):
    fleet = await fleet_factory(1, data_model="TR-181", **options)
    await eventually(lambda: fleet.stats.sessions_ok >= 1, 10)
    return fleet, fleet.cpes[0]


async def run_lua(source, services, **args):
    run = LuaRun(source, services=services, args=args, limits=Limits(wall_seconds=60))
    outcome = await run.run()
    assert outcome.status == "succeeded", outcome.error
    return outcome.result


@pytest.fixture
async def firmware_server():
    """An HTTP server with one firmware image at /fw-2.0.0.bin (anything else: 404)."""
    async with serve_files({"/fw-2.0.0.bin": firmware_image("2.0.0")}) as base:
        yield base


DOWNLOAD = """
return send_cwmp_message(args.sn, [[<cwmp:Download><CommandKey>]] .. args.key ..
  [[</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>]] .. args.url ..
  [[</URL><Username></Username><Password></Password><FileSize>4096</FileSize>
  <TargetFileName></TargetFileName><DelaySeconds>0</DelaySeconds></cwmp:Download>]], 7)
"""


async def test_a_firmware_download_is_answered_with_its_transfer_complete(
    fleet_factory, services, firmware_server
):
    _, cpe = await _cpe(fleet_factory)
    result = await run_lua(
        DOWNLOAD, services, sn=cpe.serial, key="fw-1", url=f"{firmware_server}/fw-2.0.0.bin"
    )
    assert result["transfer_complete"] is True and result["command_key"] == "fw-1"
    assert result["status"] == 0
    assert cpe.dm.value("Device.DeviceInfo.SoftwareVersion") == "2.0.0"
    assert cpe.rebooted == 1  # a new image runs after a reboot
    device = await asyncio.to_thread(services.devices.get_lua, cpe.serial)
    await eventually(lambda: services.devices.get_lua(cpe.serial)["version"] == "2.0.0")
    assert device is not None


async def test_a_failed_download_gives_the_fault_of_its_transfer_complete(
    fleet_factory, services, firmware_server
):
    _, cpe = await _cpe(fleet_factory)
    missing = await run_lua(
        DOWNLOAD, services, sn=cpe.serial, key="fw-2", url=f"{firmware_server}/nothing.bin"
    )
    assert missing["error_code"] == "9010" and "HTTP 404" in missing["error_message"]
    assert cpe.dm.value("Device.DeviceInfo.SoftwareVersion") != "2.0.0"


async def test_reboot_factory_reset_schedule_inform_and_rpc_methods(fleet_factory, services):
    fleet, cpe = await _cpe(fleet_factory)
    result = await run_lua(
        """
        local sn = args.sn
        return {
          reboot = send_cwmp_message(sn,
            "<cwmp:Reboot><CommandKey>rb-1</CommandKey></cwmp:Reboot>", 5),
          methods = send_cwmp_message(sn, "<cwmp:GetRPCMethods/>", 12),
          scheduled = send_cwmp_message(sn, [[<cwmp:ScheduleInform><DelaySeconds>0</DelaySeconds>
            <CommandKey>si-1</CommandKey></cwmp:ScheduleInform>]], 9),
        }""",
        services,
        sn=cpe.serial,
    )
    assert result["reboot"] is True and result["scheduled"] is True
    assert "Download" in result["methods"] and "Reboot" in result["methods"]
    await eventually(lambda: cpe.rebooted == 1)
    sessions = fleet.stats.sessions_ok
    await eventually(lambda: fleet.stats.sessions_ok > sessions, 10)
    ms = "Device.ManagementServer."
    cr_user = cpe.dm.value(ms + "ConnectionRequestUsername")
    assert cr_user
    reset = await run_lua(
        'return send_cwmp_message(args.sn, "<cwmp:FactoryReset/>", 6)', services, sn=cpe.serial
    )
    assert reset is True
    await eventually(lambda: cpe.factory_resets == 1)
    # It bootstraps again, and the ACS gives it connection-request credentials again.
    await eventually(lambda: cpe.dm.value(ms + "ConnectionRequestUsername") not in ("",), 10)
    assert cpe.dm.value(ms + "ConnectionRequestUsername") != cr_user


async def test_notification_attributes_decide_which_changes_are_reported(
    fleet_factory, services, nc
):
    from oktoscripts.cwmp import events

    _, cpe = await _cpe(fleet_factory)
    ssid = "Device.WiFi.SSID.1.SSID"
    result = await run_lua(
        """
        local set = send_cwmp_message(args.sn, [[<cwmp:SetParameterAttributes><ParameterList>
          <SetParameterAttributesStruct><Name>]] .. args.p .. [[</Name>
          <NotificationChange>1</NotificationChange><Notification>0</Notification>
          <AccessListChange>0</AccessListChange><AccessList/></SetParameterAttributesStruct>
          </ParameterList></cwmp:SetParameterAttributes>]], 11)
        local got = send_cwmp_message(args.sn, [[<cwmp:GetParameterAttributes><ParameterNames>
          <string>]] .. args.p .. [[</string></ParameterNames></cwmp:GetParameterAttributes>]], 10)
        return {set = set, got = got}""",
        services,
        sn=cpe.serial,
        p=ssid,
    )
    assert result["set"] is True
    assert result["got"] == [{"name": ssid, "notification": 0, "access_list": []}]
    from oktoscripts.bus import listening

    js = nc.jetstream()
    await events.ensure_stream(js)
    received = listening.iterate(await events.subscribe(js, "4", cpe.serial))
    first = asyncio.ensure_future(received.__anext__())
    try:
        cpe.change_value(ssid, "quiet")  # notification off: no VALUE CHANGE
        assert ("4 VALUE CHANGE", "") not in cpe.events
        await asyncio.sleep(0.5)
        assert not first.done()
        cpe.attributes[ssid] = 2  # active: reported at once
        cpe.change_value(ssid, "loud")
        event = await asyncio.wait_for(first, 10)
        assert event["event"] == "4" and event["serial_number"] == cpe.serial
    finally:
        first.cancel()
        await received.aclose()


async def test_a_stored_firmware_reaches_the_cpe_through_a_signed_url(
    fleet_factory, services, mongo_db, url
):
    from oktoscripts.cwmp.http11 import ClientConnection
    from oktoscripts.filestore import signing
    from oktoscripts.filestore.store import FileStore

    store = FileStore(mongo_db)
    store.ensure_indexes()
    stored = store.put(
        "fw-3.1.0.bin",
        firmware_image("3.1.0", 3 * 1024 * 1024),
        "1 Firmware Upgrade Image",
        "tester",
    )
    _, cpe = await _cpe(fleet_factory)
    result = await run_lua(DOWNLOAD, services, sn=cpe.serial, key="fw-3", url="store:fw-3.1.0.bin")
    assert result["transfer_complete"] is True, result
    assert cpe.dm.value("Device.DeviceInfo.SoftwareVersion") == "3.1.0"
    missing = await run_lua(DOWNLOAD, services, sn=cpe.serial, key="fw-4", url="store:nope.bin")
    assert missing["error_code"] == "404" and "nope.bin" in missing["error_message"]
    # The URL is good for that CPE, until it expires, and not altered.
    base = url.rsplit("/", 1)[0]
    good = signing.signed_path(stored.id, stored.name, cpe.serial)
    expired = signing.signed_path(stored.id, stored.name, cpe.serial, ttl_s=-1)
    other = good.replace(f"sn={cpe.serial}", "sn=SOMEONE-ELSE")
    client = ClientConnection(base + good)
    try:
        ok = await client.request("GET", target=good)
        assert ok.status == 200 and len(ok.body) == stored.size
        for bad in (expired, other, good.replace("sig=", "sig=0")):
            assert (await client.request("GET", target=bad)).status == 404
    finally:
        await client.close()


async def test_the_device_page_operations_run_against_a_real_cpe(fleet_factory, services, mongo_db):
    """The scripts the device page starts (oktoscripts/devices/operations.py)."""
    from oktoscripts.devices.operations import script
    from oktoscripts.filestore.store import FileStore

    store = FileStore(mongo_db)
    store.ensure_indexes()
    store.put("fw-5.0.0.bin", firmware_image("5.0.0"), "1 Firmware Upgrade Image", "tester")
    _, cpe = await _cpe(fleet_factory)
    device = await asyncio.to_thread(services.devices.get_lua, cpe.serial)
    await run_lua(script("reboot", device), services, serial=cpe.serial)
    await eventually(lambda: cpe.rebooted == 1)
    result = await run_lua(
        script("download", device), services, serial=cpe.serial, file="fw-5.0.0.bin"
    )
    assert result["transfer_complete"] is True
    assert cpe.dm.value("Device.DeviceInfo.SoftwareVersion") == "5.0.0"
    await run_lua(script("factory_reset", device), services, serial=cpe.serial)
    await eventually(lambda: cpe.factory_resets == 1)


async def test_an_upload_puts_the_configuration_and_answers_with_its_transfer_complete(
    fleet_factory, services
):
    received = []

    async def handle(reader, writer):
        http = ServerConnection(reader, writer, 1024 * 1024)
        try:
            while (request := await http.next_request(5)) is not None:
                received.append((request.method, request.target, request.body))
                await http.send(Response(201))
        except Exception:  # noqa: BLE001 - the client hung up
            pass
        finally:
            await http.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/configs/up.cfg"
    try:
        _, cpe = await _cpe(fleet_factory)
        result = await run_lua(
            """return send_cwmp_message(args.sn, [[<cwmp:Upload>
          <CommandKey>up-1</CommandKey><FileType>1 Vendor Configuration File</FileType>
          <URL>]] .. args.url .. [[</URL><Username></Username><Password></Password>
          <DelaySeconds>0</DelaySeconds></cwmp:Upload>]], 8)""",
            services,
            sn=cpe.serial,
            url=url,
        )
    finally:
        server.close()
    assert result["transfer_complete"] is True and result["command_key"] == "up-1"
    method, target, body = received[0]
    assert (method, target) == ("PUT", "/configs/up.cfg")
    assert f"Device.DeviceInfo.SerialNumber={cpe.serial}".encode() in body
    assert b"Password" not in body


async def test_a_large_stored_file_is_served_whole_and_by_byte_range(mongo_db, url):
    """A multi-MB image spanning several stored chunks: the whole file, a range
    across a chunk boundary (the rest of a download that broke off), the last
    bytes, and a range outside the file (416)."""
    import hashlib
    import io
    import os

    from oktoscripts.cwmp.http11 import ClientConnection
    from oktoscripts.filestore import signing
    from oktoscripts.filestore.store import CHUNK_BYTES, FileStore

    class Trickle(io.BytesIO):
        """An upload whose reads come in small pieces (as from a socket)."""

        def read(self, size: int = -1) -> bytes:
            return super().read(min(size, 100_000) if size > 0 else 100_000)

    store = FileStore(mongo_db)
    store.ensure_indexes()
    data = os.urandom(5 * CHUNK_BYTES + 12345)
    stored = store.put("big-image.bin", Trickle(data), "1 Firmware Upgrade Image", "tester")
    path = signing.signed_path(stored.id, stored.name, "ANY-SERIAL")
    client = ClientConnection(url.rsplit("/", 1)[0] + path, timeout=30)
    try:
        whole = await client.request("GET", target=path)
        assert whole.status == 200 and whole.header("Accept-Ranges") == "bytes"
        assert hashlib.sha256(whole.body).hexdigest() == stored.sha256
        start, end = CHUNK_BYTES - 10, 3 * CHUNK_BYTES + 10
        part = await client.request("GET", [("Range", f"bytes={start}-{end}")], target=path)
        assert part.status == 206 and part.body == data[start : end + 1]
        assert part.header("Content-Range") == f"bytes {start}-{end}/{len(data)}"
        rest = await client.request("GET", [("Range", f"bytes={start}-")], target=path)
        assert rest.status == 206 and rest.body == data[start:]
        tail = await client.request("GET", [("Range", "bytes=-100")], target=path)
        assert tail.status == 206 and tail.body == data[-100:]
        outside = await client.request("GET", [("Range", f"bytes={len(data)}-")], target=path)
        assert outside.status == 416
        assert outside.header("Content-Range") == f"bytes */{len(data)}"
        again = await client.request("GET", target=path)  # from the ACS's chunk cache
        assert again.body == data
    finally:
        await client.close()
        store.delete("big-image.bin")
