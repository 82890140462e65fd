"""OKTOSCRIPTS_ACS_AUTH=onboard: CPEs with a shared or empty factory password
are admitted once, given a credential of their own in that first session, and
only that credential works for them afterwards."""

from __future__ import annotations

import logging

import pytest

from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.devices.documents import api_json
from oktoscripts.devices.identifiers import tr069_usernames

from .conftest import eventually

FACTORY = ("factory", "f4ct0ry")


@pytest.fixture
def acs_config() -> AcsConfig:
    return AcsConfig(
        host="127.0.0.1",
        port=0,
        path="/acs",
        session_timeout=5.0,
        auth="onboard",
        onboard_credentials=(FACTORY, ("", "")),
    )


async def _factory_cpe(fleet_factory, **quirks):
    """A CPE with the shared factory password (sent pre-emptively, Basic)."""
    fleet = await fleet_factory(
        1,
        provision=False,
        credentials=None,
        auth="basic",
        username=FACTORY[0],
        password=FACTORY[1],
        **quirks,
    )
    return fleet, fleet.cpes[0]


async def _sessions(fleet, count):
    await eventually(lambda: fleet.stats.sessions_ok >= count, 10)


def _onboarding(mongo_db, serial):
    doc = mongo_db.devices.find_one({"_id": serial})
    return (api_json(doc).get("cwmp_details") or {}).get("onboarding") if doc else None


@pytest.mark.parametrize("factory", [FACTORY, ("", "")], ids=["shared", "empty"])
async def test_a_cpe_with_a_factory_password_is_given_its_own(
    fleet_factory, mongo_db, credential_store, factory
):
    fleet = await fleet_factory(
        1, provision=False, credentials=None, auth="basic", username=factory[0], password=factory[1]
    )
    cpe = fleet.cpes[0]
    await _sessions(fleet, 1)
    own = tr069_usernames(cpe.options.oui, "", cpe.serial)[1]
    onboarding = _onboarding(mongo_db, cpe.serial)
    assert onboarding["state"] == "done" and onboarding["username"] == own
    assert credential_store.exists(own)
    ms = cpe.dm.root + "ManagementServer."
    assert cpe.dm.value(ms + "Username") == own
    assert credential_store.verify_basic(own, cpe.dm.value(ms + "Password"))
    assert cpe.dm.value(ms + "ConnectionRequestUsername")  # as for every new CPE
    # Its next session is made with its own credential, and works.
    assert (cpe.username, cpe.password) != factory
    cpe.wake()
    await _sessions(fleet, 2)
    assert cpe.last_session_ok is True


async def test_a_cpe_that_keeps_the_factory_password_is_refused_and_reported(
    fleet_factory, mongo_db, caplog
):
    caplog.set_level(logging.WARNING, logger="oktoscripts.cwmp.acs")
    fleet, cpe = await _factory_cpe(fleet_factory, quirk_keeps_factory_credential=True)
    await _sessions(fleet, 1)
    assert _onboarding(mongo_db, cpe.serial)["state"] == "done"
    cpe.wake()
    await eventually(lambda: fleet.stats.sessions_failed >= 1, 10)
    await eventually(lambda: _onboarding(mongo_db, cpe.serial)["factory_refusals"] >= 1)
    onboarding = _onboarding(mongo_db, cpe.serial)
    assert onboarding["factory_refused_at"]
    assert any(
        "presented the factory credential" in r.getMessage() and cpe.serial in r.getMessage()
        for r in caplog.records
    )


async def test_a_cpe_that_faults_its_new_password_is_reported_and_not_locked_out(
    fleet_factory, mongo_db, credential_store, caplog
):
    """The CPE answers the onboarding SetParameterValues with a fault: the device
    record (shown on its page) and the log say so, no credential is made for it,
    and its factory credential keeps working (asked again at each session)."""
    caplog.set_level(logging.WARNING, logger="oktoscripts.cwmp.acs")
    fleet, cpe = await _factory_cpe(fleet_factory, quirk_refuses_acs_credential=True)
    await _sessions(fleet, 1)
    await eventually(lambda: (_onboarding(mongo_db, cpe.serial) or {}).get("state") == "refused")
    onboarding = _onboarding(mongo_db, cpe.serial)
    assert onboarding["fault"].startswith("9001") and onboarding["at"]
    assert not credential_store.exists(tr069_usernames(cpe.options.oui, "", cpe.serial)[1])
    assert any(
        "refused its own ACS credential" in r.getMessage() and cpe.serial in r.getMessage()
        for r in caplog.records
    )
    # Not locked out: its next session, still with the factory credential, works.
    assert (cpe.username, cpe.password) == FACTORY
    cpe.wake()
    await _sessions(fleet, 2)
    assert cpe.last_session_ok is True and fleet.stats.sessions_failed == 0
    assert _onboarding(mongo_db, cpe.serial)["state"] == "refused"


async def test_another_password_is_still_refused(fleet_factory, mongo_db):
    fleet = await fleet_factory(
        1, provision=False, credentials=None, auth="basic", username=FACTORY[0], password="guess"
    )
    await eventually(lambda: fleet.stats.sessions_failed >= 1, 10)
    assert fleet.stats.sessions_ok == 0
    assert mongo_db.devices.find_one({"_id": fleet.cpes[0].serial}) is None


async def test_the_factory_password_cannot_claim_a_provisioned_cpe(fleet_factory, url, mongo_db):
    """A CPE whose credential the operator stored beforehand is never reachable
    with the factory credential: someone knowing it cannot pose as that CPE."""
    from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions

    genuine = await fleet_factory(1)  # per-CPE credentials, stored (Digest: no
    await _sessions(genuine, 1)  # Authorization until challenged: no factory login)
    assert _onboarding(mongo_db, genuine.cpes[0].serial) is None
    impostor = CpeFleet(
        1,
        CpeOptions(acs_url=url, auth="basic", username=FACTORY[0], password=FACTORY[1]),
        prefix=genuine.prefix,
    )
    await impostor.start()
    try:
        await eventually(lambda: impostor.stats.sessions_failed >= 1, 10)
        assert impostor.stats.sessions_ok == 0
        # The attempt shows on the genuine CPE's page.
        await eventually(
            lambda: (
                (_onboarding(mongo_db, genuine.cpes[0].serial) or {}).get("factory_refusals", 0)
                >= 1
            )
        )
        assert _onboarding(mongo_db, genuine.cpes[0].serial)["state"] == ""
    finally:
        await impostor.stop()


async def test_a_cpe_sending_no_credentials_after_the_challenge_is_onboarded(
    acs, mongo_db, credential_store
):
    """The empty factory credential: a CPE that answers the 401 with a request
    without credentials, on the same connection."""
    from oktoscripts.cwmp.http11 import ClientConnection

    from .raw import XML, inform

    serial = "EMPTYPW0001"
    conn = ClientConnection(f"http://127.0.0.1:{acs.port}/acs")
    try:
        first = await conn.request("POST", [XML], inform(serial, oui="00A0B1"))
        assert first.status == 401
        second = await conn.request("POST", [XML], inform(serial, oui="00A0B1"))
        assert second.status == 200 and b"InformResponse" in second.body
    finally:
        await conn.close()
    assert mongo_db.devices.find_one({"_id": serial}) is not None
