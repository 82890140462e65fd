"""Fixtures of the twin tests: the real ACS and USP controller of the CWMP and
USP tests, simulated devices talking to them over real sockets, and a twin
host running in the test's event loop."""

from __future__ import annotations

import asyncio

import pytest

from tests.cwmp import conftest as _cwmp
from tests.usp import conftest as _usp

# The fixtures of the CWMP and USP tests, shared here.
_tls_home, tls_home, acs_config, acs, url = (
    _cwmp._tls_home,
    _cwmp.tls_home,
    _cwmp.acs_config,
    _cwmp.acs,
    _cwmp.url,
)
cpe_credential, credential_store, db_name = (
    _cwmp.cpe_credential,
    _cwmp.credential_store,
    _cwmp.db_name,
)
fleet_factory, mongo_db, nc = _cwmp.fleet_factory, _cwmp.mongo_db, _cwmp.nc
mqtt311, mqtt311_url = _usp.mqtt311, _usp.mqtt311_url
start_env, stop_env = _usp.start_env, _usp.stop_env


async def until(condition, timeout: float = 15.0, step: float = 0.05):
    """Wait until ``condition()`` (sync or async) gives a true value, and return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


@pytest.fixture
async def host_factory(mongo_db, nc, credential_store):
    """Make a TwinHost (stopped after the test); drive it with ``await host.step()``."""
    from oktoscripts.twins.host import HostOptions, TwinHost

    hosts = []

    def make(**options) -> TwinHost:
        host = TwinHost(mongo_db, nc, HostOptions(**options), credential_store)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        await host.stop()


@pytest.fixture
async def demo_host(host_factory, mongo_db, url):
    """A twin host running the built-in demo twins (fresh ones), each online."""
    from oktoscripts.twins import demos, store

    host = host_factory(acs_url=url)
    for content in demos.shipped().values():  # an earlier test's twins (and their old addresses) go
        if mongo_db[store.TWINS].find_one({"_id": content["serial"]}):
            await asyncio.to_thread(store.delete, mongo_db, content["serial"])
    serials = await asyncio.to_thread(demos.ensure, mongo_db)
    await host.step()
    for serial in serials:
        await until(
            lambda s=serial: (mongo_db.devices.find_one({"_id": s}) or {}).get("status") == 2
        )
    return host
