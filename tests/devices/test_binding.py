"""A device credential speaks only for the devices it is bound to (USP
Endpoint IDs and fleets sharing one credential by prefix)."""

from __future__ import annotations

import pytest

from oktoscripts.devices.credentials import CredentialError


def speaks_for(credentials, username: str, identity: str) -> bool:
    binding = credentials.binding(username)
    return binding is not None and binding.permits(identity)


def test_an_unbound_credential_speaks_for_the_device_named_like_it(credentials):
    credentials.create_or_update("CPE-0001", "secret")
    assert speaks_for(credentials, "CPE-0001", "CPE-0001")
    assert not speaks_for(credentials, "CPE-0001", "CPE-0002")


def test_a_bound_credential_speaks_for_its_devices_and_prefixes_only(credentials):
    credentials.create_or_update("fleet", "secret")
    assert credentials.bind("fleet", ["os::gw-1", "os::00D09E-sim-*"])
    for identity, allowed in [
        ("os::gw-1", True),
        ("os::gw-10", False),
        ("os::00D09E-sim-00042", True),
        ("os::00D09E-simX", False),
        ("", False),
    ]:
        assert speaks_for(credentials, "fleet", identity) is allowed, identity


def test_a_prefix_binds_cwmp_serials_too(credentials):
    credentials.create_or_update("shop", "secret", devices=["SHOP-*"])
    binding = credentials.binding("shop")
    assert binding.permits_cwmp("00D09E", "", "SHOP-17")
    assert not binding.permits_cwmp("00D09E", "", "HOME-17")


def test_a_new_password_keeps_the_binding(credentials):
    credentials.create_or_update("gw", "one")
    credentials.bind("gw", ["os::gw-7"])
    credentials.create_or_update("gw", "two")
    assert speaks_for(credentials, "gw", "os::gw-7")
    assert not speaks_for(credentials, "gw", "os::gw-8")


def test_no_credential_speaks_for_nobody(credentials):
    assert not speaks_for(credentials, "nobody", "nobody")
    assert not credentials.bind("nobody", ["os::x"])


@pytest.mark.parametrize("entries", [["*"], [""], [" "], [42], "os::x"])
def test_a_binding_to_everything_or_nothing_is_refused(credentials, entries):
    credentials.create_or_update("bad", "secret")
    with pytest.raises(CredentialError):
        credentials.bind("bad", entries)
    assert not speaks_for(credentials, "bad", "os::x")
