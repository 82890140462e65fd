"""create_or_update_device_credential's optional third argument: the devices a
credential speaks for beside the one its username names."""

from __future__ import annotations

from oktoscripts.devices.credentials import CredentialStore

from .test_lua_devices import nc, run, services  # noqa: F401 - fixtures

CALLS = """return {
    create_or_update_device_credential("customer-1", "pw", {"SN-1", "SN-2"}),
    create_or_update_device_credential("customer-2", "pw", "SN-3"),
    create_or_update_device_credential("customer-3", "pw"),
    create_or_update_device_credential("customer-4", "pw", {"a/b"}),
}"""


async def test_a_credential_bound_from_lua(services, mdb):  # noqa: F811
    lines = []
    outcome = await run(CALLS, services, on_output=lines.append)
    assert outcome.result == [True, True, True, False]  # "a/b" is no serial
    store = CredentialStore(mdb)
    assert store.binding("customer-1").serials == {"SN-1", "SN-2"}
    assert store.binding("customer-2").permits("SN-3")
    assert store.binding("customer-3").serials == frozenset()
    assert store.binding("customer-4") is None
    assert any("contains '/'" in line.text for line in lines if line.level == "warning")


async def test_a_wrong_devices_argument_is_a_clear_error(services):  # noqa: F811
    outcome = await run('create_or_update_device_credential("c", "pw", {1, 2})', services)
    assert outcome.status == "failed"
    assert "argument #3 (devices) must be a serial or a list of serials" in outcome.error.message
