"""Fixtures of the CWMP tests: a real ACS (HTTP on a free port, real NATS and
MongoDB) and simulated CPEs talking to it over real sockets."""

from __future__ import annotations

import itertools

import pytest

from oktoscripts.cwmp.app import start_acs
from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions

CPE_USER, CPE_PASSWORD = "cpe-user", "cpe-secret"
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def db_name(mongo_uri) -> str:
    from django.conf import settings

    return settings.MONGO_DB_NAME


@pytest.fixture(scope="session")
def mongo_db(mongo_uri, db_name):
    import pymongo

    client = pymongo.MongoClient(mongo_uri, tz_aware=True)
    yield client[db_name]
    client.close()


@pytest.fixture(scope="session")
def cpe_credential(mongo_db) -> tuple[str, str]:
    from oktoscripts.devices.credentials import CredentialStore

    store = CredentialStore(mongo_db)
    store.ensure_indexes()
    store.create_or_update(CPE_USER, CPE_PASSWORD)
    return CPE_USER, CPE_PASSWORD


@pytest.fixture
def acs_config() -> AcsConfig:
    return AcsConfig(host="127.0.0.1", port=0, path="/acs", session_timeout=5.0)


@pytest.fixture
async def acs(acs_config, nats_url, mongo_uri, db_name, cpe_credential):
    app = await start_acs(acs_config, nats_url=nats_url, mongo_uri=mongo_uri, db_name=db_name)
    yield app
    await app.stop()


@pytest.fixture
async def nc(nats_url):
    import nats

    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
async def fleet_factory(acs):
    """Make fleets with fresh serials against the ACS; stopped after the test."""
    fleets: list[CpeFleet] = []

    async def make(count: int = 1, *, run: bool = True, **options) -> CpeFleet:
        opts = dict(
            acs_url=f"http://127.0.0.1:{acs.port}/acs",
            username=CPE_USER,
            password=CPE_PASSWORD,
            periodic_interval=3600,
        )
        opts.update(options)
        fleet = CpeFleet(count, CpeOptions(**opts), prefix=f"T{next(_prefixes):03d}SIM")
        await fleet.start(run=run)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        await fleet.stop()


async def eventually(condition, timeout: float = 5.0) -> None:
    """Wait until ``condition()`` is true (work the ACS finishes after answering)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
