"""Script requests through NATS, the MongoDB queue, Connection Requests and sessions."""

import asyncio
import contextlib

from oktoscripts.cwmp import client
from oktoscripts.cwmp.soap import RpcRequest

from .conftest import eventually


async def _booted(fleet, count=None):
    for _ in range(200):
        if fleet.stats.sessions_ok >= (count or len(fleet.cpes)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("CPEs did not complete their first session")


def gpv(*names):
    return RpcRequest("GetParameterValues", names=list(names))


async def test_sync_request_wakes_cpe_with_digest_connection_request(fleet_factory, nc):
    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    assert cpe.cr_credentials()[0]  # the CPE now demands Digest on connection requests
    name = cpe.dm.root + "DeviceInfo.SerialNumber"
    answer = await client.call(nc, cpe.serial, gpv(name), timeout_s=10)
    assert answer == {"ok": True, "result": {name: cpe.serial}}
    assert fleet.stats.connection_requests == 1


async def test_requests_are_delivered_in_order(fleet_factory, nc):
    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    ssid = cpe.dm.root + (
        "WiFi.SSID.1.SSID" if cpe.dm.root == "Device." else "LANDevice.1.WLANConfiguration.1.SSID"
    )
    calls = [
        client.call(
            nc,
            cpe.serial,
            RpcRequest("SetParameterValues", values=[(ssid, f"net-{i}", "string")]),
            timeout_s=15,
        )
        for i in range(5)
    ]
    results = await asyncio.gather(*calls)
    assert all(r == {"ok": True, "result": True} for r in results)
    # five sets, in the order they were queued: the last one wins
    assert cpe.dm.value(ssid) == "net-4"


async def test_unknown_device_is_404(acs, nc):
    answer = await client.call(nc, "NO-SUCH-DEVICE", gpv("Device."), timeout_s=5)
    assert answer["ok"] is False and answer["error"]["error_code"] == "404"


async def test_unreachable_cpe_is_503_and_not_queued(fleet_factory, nc, mongo_db):
    fleet = await fleet_factory(1)
    await _booted(fleet)
    await fleet.cr_server.stop()  # the CPE's connection request port goes away
    fleet.cr_server._server.close()
    await fleet.cr_server._server.wait_closed()
    answer = await client.call(nc, fleet.cpes[0].serial, gpv("Device."), timeout_s=10)
    assert answer["error"]["error_code"] == "503", answer
    assert "connection request failed" in answer["error"]["error_message"]
    serial = fleet.cpes[0].serial
    await eventually(lambda: mongo_db.cwmp_queue.count_documents({"serial": serial}) == 0)


async def test_async_request_waits_for_next_inform(fleet_factory, nc, mongo_db):
    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    name = cpe.dm.root + "DeviceInfo.ModelName"
    call = asyncio.ensure_future(client.call(nc, cpe.serial, gpv(name), mode="async", timeout_s=20))
    await asyncio.sleep(0.5)
    assert not call.done()  # no connection request: it waits in the queue
    assert fleet.stats.connection_requests == 0
    assert mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}) == 1
    cpe.add_event("2 PERIODIC")  # the CPE's next Inform
    assert await call == {"ok": True, "result": {name: cpe.dm.value(name)}}
    await eventually(lambda: mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}) == 0)


async def test_async_timeout_is_408_and_request_dropped(fleet_factory, nc, mongo_db):
    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    answer = await client.call(nc, cpe.serial, gpv("Device."), mode="async", timeout_s=0.5)
    assert answer["error"]["error_code"] == "408"
    await asyncio.sleep(0.3)
    await eventually(lambda: mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}) == 0)
    cpe.add_event("2 PERIODIC")
    await _booted(fleet, 2)  # the next session has nothing to deliver


async def test_faults_come_back_as_error_tables(fleet_factory, nc):
    fleet = await fleet_factory(1, data_model="TR-181")
    await _booted(fleet)
    cpe = fleet.cpes[0]
    answer = await client.call(nc, cpe.serial, gpv("Device.NoSuch.Thing"), timeout_s=10)
    assert answer["error"]["error_code"] == "9005"
    assert "Invalid parameter name" in answer["error"]["error_message"]
    assert "<FaultCode>9005</FaultCode>" in answer["error"]["raw_response"]
    spv = RpcRequest(
        "SetParameterValues",
        values=[
            ("Device.DeviceInfo.SerialNumber", "x", "string"),
            ("Device.WiFi.Radio.1.Channel", "abc", "unsignedInt"),
            ("Device.WiFi.SSID.1.SSID", "fine", "string"),
        ],
    )
    answer = await client.call(nc, cpe.serial, spv, timeout_s=10)
    err = answer["error"]
    assert err["error_code"] == "9003"
    assert err["parameter_faults"] == [
        {
            "parameter_name": "Device.DeviceInfo.SerialNumber",
            "fault_code": "9008",
            "fault_string": "Attempt to set a non-writable parameter",
        },
        {
            "parameter_name": "Device.WiFi.Radio.1.Channel",
            "fault_code": "9007",
            "fault_string": "Invalid parameter value",
        },
    ]
    assert cpe.dm.value("Device.WiFi.SSID.1.SSID") != "fine"  # all or nothing


async def test_partial_path_is_expanded_when_the_cpe_refuses_it(fleet_factory, nc):
    fleet = await fleet_factory(1, data_model="TR-098", quirk_no_partial_gpv=True)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    answer = await client.call(
        nc,
        cpe.serial,
        gpv("InternetGatewayDevice.DeviceInfo.", "InternetGatewayDevice.ManagementServer.URL"),
        timeout_s=10,
    )
    assert answer["ok"], answer
    result = answer["result"]
    assert result["InternetGatewayDevice.DeviceInfo.SerialNumber"] == cpe.serial
    assert "InternetGatewayDevice.ManagementServer.URL" in result
    assert len(result) == 10


async def test_requests_of_a_deleted_device_are_not_sent_when_it_comes_back(
    fleet_factory, nc, mongo_db
):
    from oktoscripts.devices.registry import DeviceRegistry

    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    name = cpe.dm.root + "DeviceInfo.ModelName"
    stale = asyncio.ensure_future(client.call(nc, cpe.serial, gpv(name), mode="async", timeout_s=4))
    await eventually(lambda: mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}) == 1)
    assert await asyncio.to_thread(DeviceRegistry(mongo_db).delete, cpe.serial)
    cpe.add_event("2 PERIODIC")  # it Informs again: a new device to the registry
    await _booted(fleet, 2)
    answer = await stale
    assert answer["ok"] is False and answer["error"]["error_code"] == "408", answer
    # What is queued for the new device is delivered as usual.
    fresh = asyncio.ensure_future(
        client.call(nc, cpe.serial, gpv(name), mode="async", timeout_s=20)
    )
    await eventually(lambda: mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}) == 1)
    cpe.add_event("2 PERIODIC")
    assert await fresh == {"ok": True, "result": {name: cpe.dm.value(name)}}


async def test_a_request_made_while_no_acs_listens_waits_for_one(fleet_factory, acs, nats_url):
    """The ACS is briefly away from NATS (restarting, or reconnecting to another
    server of a cluster that lost one): a script's request is sent again until
    an ACS takes it, instead of failing with "the ACS is not running"."""
    import nats

    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    name = cpe.dm.root + "DeviceInfo.SerialNumber"
    await acs.service.stop()
    caller = await nats.connect(nats_url)
    try:
        sent = caller.stats["out_msgs"]
        call = asyncio.ensure_future(client.call(caller, cpe.serial, gpv(name), timeout_s=20))
        await eventually(lambda: caller.stats["out_msgs"] >= sent + 3)  # refused, sent again
        assert not call.done()
        await acs.service.start()
        assert await call == {"ok": True, "result": {name: cpe.serial}}
    finally:
        await caller.close()


def spv(cpe, key: str) -> RpcRequest:
    name = cpe.dm.root + "ManagementServer.PeriodicInformInterval"
    return RpcRequest(
        "SetParameterValues", values=[(name, "3600", "unsignedInt")], parameter_key=key
    )


async def test_a_call_made_again_with_its_call_id_reaches_the_cpe_once(fleet_factory, nc):
    """The n-th device call of a run that is run again (its worker died) is the
    same call: the CPE applies it once, every attempt gets its answer."""
    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    first = await client.call(nc, cpe.serial, spv(cpe, "once"), timeout_s=15, call_id="run-a:1")
    requests = fleet.stats.connection_requests
    again = await client.call(nc, cpe.serial, spv(cpe, "once"), timeout_s=15, call_id="run-a:1")
    assert first == again == {"ok": True, "result": True}
    assert cpe.applied["once"] == 1
    assert fleet.stats.connection_requests == requests  # the CPE was not even woken
    # Another call of the run, or the same call without a call id, goes to the CPE.
    await client.call(nc, cpe.serial, spv(cpe, "once"), timeout_s=15, call_id="run-a:2")
    await client.call(nc, cpe.serial, spv(cpe, "once"), timeout_s=15)
    assert cpe.applied["once"] == 3


async def test_the_call_of_a_caller_that_died_is_answered_to_its_next_attempt(
    fleet_factory, nats_url
):
    """A worker dies while its call is with the CPE: the answer is published to
    nobody, and the run's next attempt, on another worker, gets it."""
    import nats

    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    dying = await nats.connect(nats_url)
    call = asyncio.ensure_future(
        client.call(dying, cpe.serial, spv(cpe, "k"), timeout_s=15, call_id="run-b:1")
    )
    await eventually(lambda: cpe.applied["k"] == 1)
    await dying.close()  # gone before the answer: nobody hears it, nothing cancels it
    await asyncio.gather(call, return_exceptions=True)
    survivor = await nats.connect(nats_url)
    try:
        answer = await client.call(
            survivor, cpe.serial, spv(cpe, "k"), timeout_s=15, call_id="run-b:1"
        )
    finally:
        await survivor.close()
    assert answer == {"ok": True, "result": True}
    assert cpe.applied["k"] == 1


async def test_a_call_whose_answer_was_lost_asks_the_acs_again(fleet_factory, acs, nc):
    """The answer is published while its caller is moving to another NATS
    server (here: the publication is dropped): a call with a call id asks the
    ACS again after RECHECK_S and gets the answer it kept."""
    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    publish, dropped = acs.acs.publish_answer, []

    async def lost_once(request_id, answer):
        if not dropped:
            dropped.append(request_id)
            return
        await publish(request_id, answer)

    acs.acs.publish_answer = lost_once
    answer = await client.call(nc, cpe.serial, spv(cpe, "lost"), timeout_s=15, call_id="run-c:1")
    assert dropped and answer == {"ok": True, "result": True}
    assert cpe.applied["lost"] == 1


async def test_a_call_whose_acs_never_replied_is_handed_over_again(fleet_factory, acs, nc):
    """The ACS queued a request but its reply was lost (its NATS server died
    under it): a call with a call id hands it over again, the ACS knows it,
    and the CPE gets it once."""
    fleet = await fleet_factory(1)
    await _booted(fleet)
    cpe = fleet.cpes[0]
    service = acs.service
    await service.stop()
    unanswered = []

    async def reply_lost_once(msg):
        if not unanswered:
            unanswered.append(await service._queue(msg.data))  # queued, no reply
            return
        await type(service)._on_request(service, msg)

    service._on_request = reply_lost_once
    await service.start()
    answer = await client.call(
        nc, cpe.serial, spv(cpe, "unreplied"), timeout_s=30, call_id="run-d:1"
    )
    assert unanswered == [{"queued": True}]
    assert answer == {"ok": True, "result": True}
    assert cpe.applied["unreplied"] == 1


@contextlib.asynccontextmanager
async def _acs_behind_proxy(count, prefix, acs_config, nats_url, mongo_uri, db_name, credentials):
    """An ACS of its own whose database connections go through a FlakyProxy,
    ``count`` booted CPEs talking to it, and a NATS connection: (proxy, fleet, nc)."""
    from urllib.parse import urlsplit

    import nats

    from oktoscripts.cwmp.app import start_acs
    from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions

    from .conftest import FLEET_CREDENTIALS
    from .flaky_proxy import FlakyProxy

    backend = urlsplit(mongo_uri)
    proxy = FlakyProxy((backend.hostname, backend.port))
    proxy.start()
    proxied = f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true"
    acs = await start_acs(acs_config, nats_url=nats_url, mongo_uri=proxied, db_name=db_name)
    nc = await nats.connect(nats_url)
    fleet = CpeFleet(
        count,
        CpeOptions(
            acs_url=f"http://127.0.0.1:{acs.port}/acs",
            credentials=FLEET_CREDENTIALS,
            periodic_interval=3600,
        ),
        prefix=prefix,
    )
    await asyncio.to_thread(credentials.create_or_update_many, fleet.credentials())
    try:
        await fleet.start()
        await _booted(fleet)
        yield proxy, fleet, nc
    finally:
        proxy.release()
        await fleet.stop()
        await nc.close()
        await acs.stop()
        proxy.stop()


async def test_a_database_blip_while_queueing_is_ridden_out(
    acs_config, nats_url, mongo_uri, db_name, credential_store, caplog
):
    """The ACS's database connections break as a request is queued
    (AutoReconnect): the ACS tries again, the caller gets the CPE's answer,
    and no traceback reaches the log. (No other ACS runs in this test.)"""
    import logging

    async with _acs_behind_proxy(
        1, "FLAKYDB", acs_config, nats_url, mongo_uri, db_name, credential_store
    ) as (proxy, fleet, nc):
        serial = fleet.cpes[0].serial
        caplog.set_level(logging.INFO)
        # The insert into the queue, and pymongo's own retry of it (if it makes one).
        proxy.drop_next(2, containing=b"\x02insert\x00\x0b\x00\x00\x00cwmp_queue\x00")
        answer = await client.call(nc, serial, gpv("Device.DeviceInfo.SerialNumber"), timeout_s=20)
        assert proxy.dropped >= 1
        assert answer == {"ok": True, "result": {"Device.DeviceInfo.SerialNumber": serial}}
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_a_request_stalled_in_the_database_holds_up_no_other_device(
    acs_config, nats_url, mongo_uri, db_name, credential_store
):
    """The database is slow to queue one device's request: another device's
    request is queued and answered meanwhile (the ACS once queued the
    requests of all devices one after the other)."""
    async with _acs_behind_proxy(
        2, "STALLDB", acs_config, nats_url, mongo_uri, db_name, credential_store
    ) as (proxy, fleet, nc):
        first, second = fleet.cpes
        proxy.hold(first.serial.encode())
        stalled = asyncio.ensure_future(
            client.call(nc, first.serial, gpv(first.dm.root + "DeviceInfo."), timeout_s=30)
        )
        try:
            await eventually(lambda: proxy.held > 0)
            name = second.dm.root + "DeviceInfo.SerialNumber"
            answer = await client.call(nc, second.serial, gpv(name), timeout_s=20)
            assert answer == {"ok": True, "result": {name: second.serial}}
            assert not stalled.done()
            proxy.release()
            assert (await stalled)["ok"] is True
        finally:
            stalled.cancel()
