"""Fixtures of the plan tests: the real ACS and simulated CPEs of the CWMP
tests, and Lua runs of the engine with a gate (plan mode) or without."""

from __future__ import annotations

import pytest

from tests.twins import conftest as _twins

_tls_home, tls_home, acs_config, acs, url = (
    _twins._tls_home,
    _twins.tls_home,
    _twins.acs_config,
    _twins.acs,
    _twins.url,
)
cpe_credential, credential_store, db_name = (
    _twins.cpe_credential,
    _twins.credential_store,
    _twins.db_name,
)
fleet_factory, mongo_db, nc = _twins.fleet_factory, _twins.mongo_db, _twins.nc
mqtt311, mqtt311_url = _twins.mqtt311, _twins.mqtt311_url
until = _twins.until


@pytest.fixture
def services(nc, mongo_db):
    from oktoscripts.bindings.services import Services
    from oktoscripts.devices.registry import DeviceRegistry

    return Services(nats=nc, mongo=mongo_db, devices=DeviceRegistry(mongo_db))


async def run_lua(source, services, *, gate=None, args=None, wall=30.0):
    from oktoscripts.lua.limits import Limits
    from oktoscripts.lua.run import LuaRun

    run = LuaRun(
        source, services=services, args=args or {}, limits=Limits(wall_seconds=wall), gate=gate
    )
    return await run.run()
