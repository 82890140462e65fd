"""What the ACS does with bad or odd CPE behaviour: a SOAP Fault or 204, never a
crash, and no other session affected."""

import asyncio
import json

import pytest

from oktoscripts.cwmp import client
from oktoscripts.cwmp.http11 import ClientConnection
from oktoscripts.cwmp.httpauth import basic_header
from oktoscripts.cwmp.soap import RpcRequest

from .conftest import CPE_PASSWORD, CPE_USER, eventually
from .raw import NS, XML, auth_of, inform, rpc

AUTH = ("Authorization", basic_header(CPE_USER, CPE_PASSWORD))


async def post(conn, body, *headers, auth=AUTH):
    return await conn.request("POST", [auth, XML, *headers], body)


async def healthy(fleet_factory):
    """Another CPE still gets a whole session."""
    fleet = await fleet_factory(1, run=False)
    assert await fleet.cpes[0].session()


BAD_BODIES = [
    b"<not-closed",
    b"this is not xml",
    b"<Envelope><Body><Inform></Body></Envelope>",
    b"<html><body>hello</body></html>",  # wrong envelope
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/>'
    b"</soap:Envelope>",
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 '
    b'"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol1;</lolz>',
    b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    rpc("Inform", "<DeviceId><SerialNumber></SerialNumber></DeviceId>"),  # no serial
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_unusable_first_message_gets_204(url, body, fleet_factory):
    conn = ClientConnection(url)
    response = await post(conn, body)
    assert response.status == 204
    await conn.close()
    await healthy(fleet_factory)


async def test_unusable_message_mid_session_ends_it_with_204(url, acs, authorization):
    conn = ClientConnection(url)
    auth = authorization("RAW-MID-1")
    assert (await post(conn, inform("RAW-MID-1"), auth=auth)).status == 200
    assert (await post(conn, b"<garbage", auth=auth)).status == 204
    assert "RAW-MID-1" not in acs.acs.sessions.by_serial


async def test_unknown_rpc_gets_soap_fault_8000_and_session_goes_on(url, authorization):
    conn = ClientConnection(url)
    assert (await post(conn, inform("RAW-UNK-1"), auth=authorization("RAW-UNK-1"))).status == 200
    response = await post(conn, rpc("Kicked", "<Command>x</Command>", "k9"))
    assert response.status == 200
    assert b"<FaultCode>8000</FaultCode>" in response.body and b">k9</cwmp:ID>" in response.body
    assert NS.encode() in response.body
    assert (await post(conn, b"")).status == 204


async def test_cpe_requests_in_session(url, nc, authorization):
    from oktoscripts.bus import subjects

    sub = await nc.jetstream().subscribe(
        subjects.cwmp_event("7", "RAW-REQ-1"), ordered_consumer=True
    )
    conn = ClientConnection(url)
    first = await post(conn, inform("RAW-REQ-1", cwmp_id="abc"), auth=authorization("RAW-REQ-1"))
    assert b'<cwmp:ID soap-env:mustUnderstand="1">abc</cwmp:ID>' in first.body
    assert b"<MaxEnvelopes>1</MaxEnvelopes>" in first.body
    methods = await post(conn, rpc("GetRPCMethods", cwmp_id="g1"))
    assert b"GetRPCMethodsResponse" in methods.body and b"TransferComplete" in methods.body
    tc = await post(
        conn,
        rpc(
            "TransferComplete",
            "<CommandKey>x</CommandKey><FaultStruct><FaultCode>0</FaultCode></FaultStruct>",
            cwmp_id="t1",
        ),
    )
    assert b"<cwmp:TransferCompleteResponse/>" in tc.body and b">t1</cwmp:ID>" in tc.body
    # a TransferComplete without the "7 TRANSFER COMPLETE" event still makes one
    event = json.loads((await sub.next_msg(timeout=5)).data)
    assert (event["event"], event["command_key"]) == ("7", "x")
    # empty POST with a content type still set: nothing more from the CPE
    assert (await conn.request("POST", [AUTH, XML], b"")).status == 204


async def test_requests_outside_a_session_get_204(url):
    conn = ClientConnection(url)
    assert (await post(conn, b"")).status == 204
    assert (await post(conn, rpc("GetRPCMethods"))).status == 204


async def test_oversized_body_gets_204_and_connection_closed(url, acs, fleet_factory):
    conn = ClientConnection(url)
    big = b"<a>" + b"x" * (acs.acs.config.max_body + 10) + b"</a>"
    response = await post(conn, big)
    assert response.status == 204
    assert response.header("Connection") == "close"
    await healthy(fleet_factory)


async def test_garbage_http_is_dropped(acs, fleet_factory):
    reader, writer = await asyncio.open_connection("127.0.0.1", acs.port)
    writer.write(b"\x16\x03\x01 definitely not http\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) in (b"", b"HTTP/1.1 400 ")  # closed
    writer.close()
    await healthy(fleet_factory)


async def test_session_tracked_by_cookie_across_connections(url, acs, mongo_db, fleet_factory):
    # Known device with a queued request; each HTTP request on a new TCP
    # connection, the raw Set-Cookie (with attributes) sent back.
    fleet = await fleet_factory(1, run=False)
    cpe = fleet.cpes[0]
    assert await cpe.session()
    nc = acs.nc
    call = asyncio.ensure_future(
        client.call(
            nc,
            cpe.serial,
            RpcRequest("GetParameterValues", names=["Device.X"]),
            mode="async",
            timeout_s=20,
        )
    )
    for _ in range(100):
        if mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}):
            break
        await asyncio.sleep(0.05)
    first = ClientConnection(url)
    response = await post(first, inform(cpe.serial, oui=cpe.options.oui), auth=auth_of(cpe))
    await first.close()
    raw_cookie = response.header("Set-Cookie")
    assert "Path=/" in raw_cookie
    second = ClientConnection(url)
    request = await post(second, b"", ("Cookie", raw_cookie), auth=auth_of(cpe))
    await second.close()
    assert b"<cwmp:GetParameterValues>" in request.body
    request_id = request.body.split(b'mustUnderstand="1">')[1].split(b"<")[0].decode()
    third = ClientConnection(url)
    fault = rpc("Fault", "", request_id).replace(
        b"<cwmp:Fault></cwmp:Fault>",
        b"<soap:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>"
        b"<detail><cwmp:Fault><FaultCode>9005</FaultCode><FaultString>Invalid parameter name"
        b"</FaultString></cwmp:Fault></detail></soap:Fault>",
    )
    end = await post(third, fault, ("Cookie", raw_cookie), auth=auth_of(cpe))
    assert end.status == 204
    answer = await call
    assert answer["error"]["error_code"] == "9005"


async def test_cpe_hanging_up_mid_session(url, acs, fleet_factory, mongo_db):
    fleet = await fleet_factory(1, run=False)
    cpe = fleet.cpes[0]
    assert await cpe.session()
    call = asyncio.ensure_future(
        client.call(
            acs.nc,
            cpe.serial,
            RpcRequest("SetParameterValues", values=[("Device.A", "1", "string")]),
            mode="async",
            timeout_s=30,
        )
    )
    for _ in range(100):
        if mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}):
            break
        await asyncio.sleep(0.05)
    conn = ClientConnection(url)
    await post(conn, inform(cpe.serial, oui=cpe.options.oui), auth=auth_of(cpe))
    request = await post(conn, b"")
    assert b"SetParameterValues" in request.body
    await conn.close()  # hangs up without answering
    await healthy(fleet_factory)  # others are served meanwhile
    answer = await asyncio.wait_for(call, 20)  # session timeout in tests: 5 s
    assert answer["error"]["error_code"] == "408"
    assert "timed out" in answer["error"]["error_message"]
    await eventually(lambda: mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}) == 0)
    assert cpe.serial not in acs.acs.sessions.by_serial


async def test_new_device_known_by_device_id_not_by_bootstrap(url, nc, mongo_db, authorization):
    from oktoscripts.devices.events import new_device_events

    new_devices = await new_device_events(nc)
    conn = ClientConnection(url)
    auth = authorization("RAW-NEW-1")
    # no "0 BOOTSTRAP": many CPEs never send it
    assert (await post(conn, inform("RAW-NEW-1", events=("1 BOOT",)), auth=auth)).status == 200
    assert (await post(conn, b"")).status == 204
    device = await asyncio.wait_for(new_devices.__anext__(), 10)
    assert device["sn"] == "RAW-NEW-1" and device["cwmp"] is True
    # the same DeviceId again is not new, even with BOOTSTRAP
    assert (await post(conn, inform("RAW-NEW-1", events=("0 BOOTSTRAP",)))).status == 200
    assert (await post(conn, b"")).status == 204
    conn2 = ClientConnection(url)
    assert (await post(conn2, inform("RAW-NEW-2"), auth=authorization("RAW-NEW-2"))).status == 200
    second = await asyncio.wait_for(new_devices.__anext__(), 10)
    assert second["sn"] == "RAW-NEW-2"  # RAW-NEW-1 was not announced twice
    await new_devices.aclose()
