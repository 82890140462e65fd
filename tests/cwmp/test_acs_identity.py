"""Who a CPE may claim to be: a device its credential speaks for, with a valid
DeviceId; and what one Inform may set off: at most 64 distinct events."""

import asyncio
import html
import json
import logging
from dataclasses import replace

import pytest

from oktoscripts.bus import subjects
from oktoscripts.cwmp import client
from oktoscripts.cwmp.events import token
from oktoscripts.cwmp.http11 import ClientConnection
from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.sim.cwmp_cpe import FleetStats, SimulatedCpe

from .conftest import eventually
from .raw import XML, inform

EVIL_USER, EVIL_PASSWORD = "evilcpe", "evil-password"


def impostor(victim, username, password, auth):
    """A simulated CPE sending the victim's DeviceId with another credential."""
    options = replace(
        victim.options,
        credentials=None,
        username=username,
        password=password,
        auth=auth,
        manufacturer="Evil Inc",
    )
    return SimulatedCpe(victim.serial, 0, options, "http://127.0.0.1:9", FleetStats())


def refusals(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "oktoscripts.cwmp.acs" and "does not speak for" in r.getMessage()
    ]


@pytest.mark.parametrize("auth", ["basic", "digest"])
async def test_a_credential_cannot_speak_for_another_device(
    auth, fleet_factory, credential_store, mongo_db, acs, caplog
):
    fleet = await fleet_factory(1, run=False)
    victim = fleet.cpes[0]
    assert await victim.session()
    await asyncio.to_thread(credential_store.create_or_update, EVIL_USER, EVIL_PASSWORD)
    name = victim.dm.root + "DeviceInfo.SoftwareVersion"
    call = asyncio.ensure_future(
        client.call(
            acs.nc, victim.serial, RpcRequest("GetParameterValues", names=[name]), mode="async"
        )
    )
    await eventually(lambda: mongo_db.cwmp_queue.count_documents({"serial": victim.serial}))

    attacker = impostor(victim, EVIL_USER, EVIL_PASSWORD, auth)
    with caplog.at_level(logging.WARNING, logger="oktoscripts.cwmp.acs"):
        assert not await attacker.session()

    # refused before anything was written or handed over, and said once
    doc = mongo_db.devices.find_one({"serial": victim.serial})
    assert doc["vendor"] == "Oktosim"
    assert not call.done()
    [line] = refusals(caplog)
    assert "127.0.0.1" in line and repr(EVIL_USER) in line and repr(victim.serial) in line
    assert repr(victim.options.oui) in line
    # the real CPE still gets the script's request and answers it
    assert await victim.session()
    answer = await asyncio.wait_for(call, 10)
    assert answer["ok"] and answer["result"] == {name: victim.dm.value(name)}


async def test_a_credential_of_tr069_form_names_the_whole_device_id(
    fleet_factory, mongo_db, caplog
):
    # The fleet's credentials are OUI-SerialNumber: another OUI with the same serial is
    # another device.
    fleet = await fleet_factory(1, run=False)
    cpe = fleet.cpes[0]
    cpe.options = replace(cpe.options, oui="00A0B2")
    with caplog.at_level(logging.WARNING, logger="oktoscripts.cwmp.acs"):
        assert not await cpe.session()
    assert mongo_db.devices.find_one({"serial": cpe.serial}) is None
    assert len(refusals(caplog)) == 1


async def test_a_credential_speaks_for_the_devices_it_is_bound_to(
    fleet_factory, credential_store, mongo_db
):
    fleet = await fleet_factory(2, run=False, provision=False)
    bound, other = fleet.cpes
    await asyncio.to_thread(
        credential_store.create_or_update, "customer-17", "pw-17", devices=[bound.serial]
    )
    for cpe in fleet.cpes:
        cpe.username, cpe.password = "customer-17", "pw-17"
    assert await bound.session()
    assert not await other.session()
    assert mongo_db.devices.find_one({"serial": other.serial}) is None


HOSTILE_DEVICE_IDS = [
    ("a/b", "00A0B1", "SerialNumber 'a/b' contains '/'"),
    ("evil&#x202E;gnp", "00A0B1", "control character U+202E"),
    ("line&#x85;break", "00A0B1", "control character U+0085"),
    ("x" * 65, "00A0B1", "longer than 64"),
    ("RAW-ID-1", "NOTHEX", "OUI 'NOTHEX'"),
    ("RAW-ID-2", "00A&#x0A;0B1", "OUI"),
]


@pytest.mark.parametrize(("serial", "oui", "why"), HOSTILE_DEVICE_IDS)
async def test_an_invalid_device_id_gets_a_soap_fault(
    serial, oui, why, url, authorization, mongo_db, fleet_factory, caplog
):
    conn = ClientConnection(url)
    with caplog.at_level(logging.WARNING, logger="oktoscripts.cwmp.acs"):
        response = await conn.request(
            "POST", [authorization("RAW-ID-0"), XML], inform(serial, oui=oui)
        )
    await conn.close()
    assert response.status == 200
    assert b"<FaultCode>8003</FaultCode>" in response.body and why.encode() in response.body
    assert mongo_db.devices.find_one({"serial": html.unescape(serial)}) is None
    [line] = [r.getMessage() for r in caplog.records if "invalid DeviceId" in r.getMessage()]
    assert why in line and "\n" not in line
    fleet = await fleet_factory(1, run=False)  # the ACS serves others as before
    assert await fleet.cpes[0].session()


async def stored_events(nc, serial, wait=1.0):
    from nats.js.api import DeliverPolicy

    sub = await nc.jetstream().subscribe(
        subjects.cwmp_event("*", token(serial)),
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    got = []
    try:
        while True:
            got.append(json.loads((await sub.next_msg(timeout=wait)).data))
    except TimeoutError:
        return got
    finally:
        await sub.unsubscribe()


async def test_an_inform_sets_off_each_event_once_and_at_most_64(
    url, authorization, nc, mongo_db, caplog
):
    conn = ClientConnection(url)
    auth = authorization("RAW-EV-1")
    boots = ["1 BOOT"] * 300 + [("1 BOOT", f"k{i}") for i in range(50)]
    with caplog.at_level(logging.WARNING, logger="oktoscripts.cwmp.acs"):
        assert (await conn.request("POST", [auth, XML], inform("RAW-EV-1", boots))).status == 200
    assert (await conn.request("POST", [auth, XML], b"")).status == 204
    assert [e["event"] for e in await stored_events(nc, "RAW-EV-1")] == ["1"]
    assert mongo_db.devices.find_one({"serial": "RAW-EV-1"})["cwmp"]["last_events"] == ["1 BOOT"]
    assert any("350 events, 1 of them distinct" in r.getMessage() for r in caplog.records)

    # "M" events differ by CommandKey: 100 distinct ones, of which the first 64 count
    downloads = [("M Download", f"key{i}") for i in range(100)] * 2
    await conn.close()
    conn = ClientConnection(url)
    auth = authorization("RAW-EV-2")
    assert (await conn.request("POST", [auth, XML], inform("RAW-EV-2", downloads))).status == 200
    got = await stored_events(nc, "RAW-EV-2")
    assert [e["command_key"] for e in got] == [f"key{i}" for i in range(64)]
    await conn.close()
