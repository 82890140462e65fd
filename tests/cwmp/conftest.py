"""Fixtures of the CWMP tests: a real ACS (HTTP on a free port, real NATS and
MongoDB) and simulated CPEs talking to it over real sockets."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from oktoscripts.cwmp.app import start_acs
from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions, FleetCredentials

CPE_USER, CPE_PASSWORD = "cpe-user", "cpe-secret"
FLEET_CREDENTIALS = FleetCredentials(b"test fleet secret")
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def _tls_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cwmp-data")


@pytest.fixture(autouse=True)
def tls_home(_tls_home, monkeypatch):
    """Where the installation's CA of these tests lives (pki.py makes it on
    first need): a directory of the test session, not the checkout's var/."""
    monkeypatch.setenv("OKTOSCRIPTS_DATA_DIR", str(_tls_home))
    for name in ("OKTOSCRIPTS_TLS_CERT", "OKTOSCRIPTS_TLS_KEY", "OKTOSCRIPTS_TLS_CA"):
        monkeypatch.delenv(name, raising=False)
    return _tls_home


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
def url(acs) -> str:
    """Where CPEs post to the ACS of the test (plain HTTP)."""
    return f"http://127.0.0.1:{acs.port}/acs"


@pytest.fixture
async def nc(nats_url):
    import nats

    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
def credential_store(mongo_db):
    from oktoscripts.devices.credentials import CredentialStore

    store = CredentialStore(mongo_db)
    store.ensure_indexes()
    return store


@pytest.fixture
async def fleet_factory(acs, credential_store):
    """Make fleets with fresh serials against the ACS, each CPE with its own
    credential (stored in the platform unless ``provision=False``); stopped
    after the test."""
    fleets: list[CpeFleet] = []

    async def make(
        count: int = 1, *, run: bool = True, provision: bool = True, cr_ssl=None, **options
    ) -> CpeFleet:
        opts = dict(
            acs_url=f"http://127.0.0.1:{acs.port}/acs",
            credentials=FLEET_CREDENTIALS,
            periodic_interval=3600,
        )
        opts.update(options)
        fleet = CpeFleet(
            count, CpeOptions(**opts), prefix=f"T{next(_prefixes):03d}SIM", cr_ssl=cr_ssl
        )
        if provision and fleet.options.credentials is not None:
            await asyncio.to_thread(credential_store.create_or_update_many, fleet.credentials())
        await fleet.start(run=run)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        await fleet.stop()


@pytest.fixture
def authorization(credential_store):
    """The Basic Authorization header of a credential named after ``serial``
    (created on first use): what raw-socket tests post with."""
    from oktoscripts.cwmp.httpauth import basic_header

    made: set[str] = set()

    def make(serial: str) -> tuple[str, str]:
        if serial not in made:
            credential_store.create_or_update(serial, CPE_PASSWORD)
            made.add(serial)
        return ("Authorization", basic_header(serial, CPE_PASSWORD))

    return make


async def eventually(condition, timeout: float = 5.0) -> None:
    """Wait until ``condition()`` is true (work the ACS finishes after answering)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
