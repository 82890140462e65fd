"""Sessions between simulated CPEs and the ACS over real sockets."""

import asyncio
import json

from oktoscripts.bus import subjects
from oktoscripts.cwmp.events import token


async def _event_sub(nc, serial):
    from nats.js.api import DeliverPolicy

    js = nc.jetstream()
    return await js.subscribe(
        subjects.cwmp_event("*", token(serial)),
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.NEW,
    )


async def test_bootstrap_registers_device_and_publishes_events(fleet_factory, mongo_db, nc):
    fleet = await fleet_factory(2, run=False, auth="digest")
    tr181, tr098 = fleet.cpes
    sub = await _event_sub(nc, tr098.serial)
    assert await tr181.session() and await tr098.session()

    doc = mongo_db.devices.find_one({"serial": tr098.serial})
    assert doc["data_model"] == "TR-098"
    assert doc["vendor"] == "Oktosim" and doc["oui"] == "00A0B1"
    assert doc["product_class"] == "IGD" and doc["version"].startswith("1.0.")
    assert doc["model"] == "Oktosim G1"  # read with a GetParameterValues in the first session
    assert doc["status"] == 2 and doc["ip"] == "127.0.0.1"
    cr = doc["cwmp"]["connection_request"]
    assert cr["url"].endswith("/" + tr098.serial)
    # the ACS set connection-request credentials on the new CPE in its first session
    assert cr["username"] == tr098.cr_credentials()[0] != ""
    assert cr["password"].startswith("v1:")  # sealed, never clear
    assert doc["cwmp"]["periodic_inform_interval"] == 3600
    assert mongo_db.devices.find_one({"serial": tr181.serial})["data_model"] == "TR-181"

    got = [json.loads((await sub.next_msg(timeout=5)).data) for _ in range(2)]
    assert [(e["event"], e["event_name"]) for e in got] == [("0", "BOOTSTRAP"), ("1", "BOOT")]
    assert got[0]["serial_number"] == tr098.serial and got[0]["timestamp"].endswith("Z")
    await sub.unsubscribe()


async def test_basic_auth_preemptive_and_raw_cookie(fleet_factory, mongo_db):
    fleet = await fleet_factory(1, run=False, auth="basic", raw_cookie=True)
    cpe = fleet.cpes[0]
    assert await cpe.session()
    assert await cpe.session()  # second session: periodic, no provisioning
    assert mongo_db.devices.find_one({"serial": cpe.serial})["status"] == 2


async def test_wrong_password_is_refused(fleet_factory, mongo_db):
    fleet = await fleet_factory(2, run=False, auth="digest")
    for cpe in fleet.cpes:
        cpe.password = "wrong"
    assert not await fleet.cpes[0].session()
    fleet.cpes[1].options = fleet.cpes[1].options.__class__(
        **{**fleet.cpes[1].options.__dict__, "auth": "basic"}
    )
    assert not await fleet.cpes[1].session()
    assert mongo_db.devices.find_one({"serial": fleet.cpes[0].serial}) is None


async def test_periodic_informs_run_by_themselves(fleet_factory, mongo_db):
    fleet = await fleet_factory(3, periodic_interval=1)
    for _ in range(100):
        if fleet.stats.sessions_ok >= 6:
            break
        await asyncio.sleep(0.1)
    assert fleet.stats.sessions_ok >= 6 and fleet.stats.sessions_failed == 0
    events = mongo_db.devices.find_one({"serial": fleet.cpes[0].serial})["cwmp"]["last_events"]
    assert events == ["2 PERIODIC"]


async def test_unknown_cpe_policy_reject(
    acs_config, nats_url, mongo_uri, db_name, mongo_db, fleet_factory
):
    from dataclasses import replace

    from oktoscripts.cwmp.app import start_acs

    known_fleet = await fleet_factory(1, run=False)
    known = known_fleet.cpes[0]
    assert await known.session()  # registered while unknown CPEs are accepted
    strict = await start_acs(
        replace(acs_config, unknown_cpe="reject"),
        nats_url=nats_url,
        mongo_uri=mongo_uri,
        db_name=db_name,
    )
    try:
        url = f"http://127.0.0.1:{strict.port}/acs"
        stranger_fleet = await fleet_factory(1, run=False, acs_url=url)
        assert not await stranger_fleet.cpes[0].session()  # SOAP Fault 8001, then nothing
        assert mongo_db.devices.find_one({"serial": stranger_fleet.cpes[0].serial}) is None
        known.options.acs_url = url
        assert await known.session()
    finally:
        await strict.stop()


async def test_authentication_off(acs_config, nats_url, mongo_uri, db_name, fleet_factory):
    from dataclasses import replace

    from oktoscripts.cwmp.app import start_acs

    open_acs = await start_acs(
        replace(acs_config, auth="off"), nats_url=nats_url, mongo_uri=mongo_uri, db_name=db_name
    )
    try:
        fleet = await fleet_factory(
            1, run=False, auth="none", acs_url=f"http://127.0.0.1:{open_acs.port}/acs"
        )
        assert await fleet.cpes[0].session()
    finally:
        await open_acs.stop()


async def test_value_change_and_connection_request_events(fleet_factory, nc):
    fleet = await fleet_factory(1)
    cpe = fleet.cpes[0]
    for _ in range(100):
        if fleet.stats.sessions_ok:
            break
        await asyncio.sleep(0.05)
    sub = await _event_sub(nc, cpe.serial)
    cpe.change_value(cpe.dm.root + "DeviceInfo.ProvisioningCode", "changed-on-device")
    first = json.loads((await sub.next_msg(timeout=10)).data)
    assert (first["event"], first["event_name"]) == ("4", "VALUE CHANGE")
    from oktoscripts.cwmp import client
    from oktoscripts.cwmp.soap import RpcRequest

    answer = await client.call(
        nc, cpe.serial, RpcRequest("GetParameterNames", path=cpe.dm.root, next_level=True)
    )
    assert answer["ok"] and cpe.dm.root + "DeviceInfo." in answer["result"]
    second = json.loads((await sub.next_msg(timeout=10)).data)
    assert (second["event"], second["event_name"]) == ("6", "CONNECTION REQUEST")
    await sub.unsubscribe()
