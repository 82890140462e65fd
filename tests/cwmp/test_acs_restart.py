"""An asynchronous request outlives a restart of the ACS."""

import asyncio

from oktoscripts.cwmp import client
from oktoscripts.cwmp.app import start_acs
from oktoscripts.cwmp.http11 import ClientConnection
from oktoscripts.cwmp.soap import RpcRequest

from .conftest import eventually


async def test_async_request_delivered_after_acs_restart(
    acs, acs_config, fleet_factory, nc, nats_url, mongo_uri, db_name, mongo_db
):
    fleet = await fleet_factory(1, run=False, data_model="TR-098")
    cpe = fleet.cpes[0]
    assert await cpe.session()
    name = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
    call = asyncio.ensure_future(
        client.call(
            nc,
            cpe.serial,
            RpcRequest("GetParameterValues", names=[name]),
            mode="async",
            timeout_s=60,
        )
    )
    for _ in range(100):
        if mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}):
            break
        await asyncio.sleep(0.05)
    assert mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}) == 1

    await acs.stop()  # the ACS goes away with the request queued
    second = await start_acs(acs_config, nats_url=nats_url, mongo_uri=mongo_uri, db_name=db_name)
    try:
        cpe.options.acs_url = f"http://127.0.0.1:{second.port}/acs"
        assert not call.done()
        assert await cpe.session()  # the CPE's next Inform, to the new ACS
        assert await asyncio.wait_for(call, 10) == {
            "ok": True,
            "result": {name: cpe.dm.value(name)},
        }
        await eventually(lambda: mongo_db.cwmp_queue.count_documents({"serial": cpe.serial}) == 0)
    finally:
        await second.stop()
    acs.stop = _noop  # already stopped: the fixture's teardown has nothing to do


async def _noop():
    return None


async def test_connection_request_needs_digest(fleet_factory):
    fleet = await fleet_factory(1, run=False)
    cpe = fleet.cpes[0]
    assert await cpe.session()  # the ACS sets connection-request credentials
    conn = ClientConnection(f"{fleet.cr_server.base_url}/{cpe.serial}")
    response = await conn.request("GET")
    assert response.status == 401
    assert response.header("WWW-Authenticate").startswith("Digest ")
    await conn.close()
    assert fleet.stats.connection_requests == 0
