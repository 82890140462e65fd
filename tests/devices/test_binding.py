"""A device credential speaks only for the devices it is bound to."""

from __future__ import annotations

import pytest

from oktoscripts.devices.binding import (
    BindingError,
    bind_credential,
    credential_may_speak_for,
    speaks_for,
)


def test_an_unbound_credential_speaks_for_the_device_named_like_it(credentials):
    credentials.create_or_update("CPE-0001", "secret")
    assert credential_may_speak_for(credentials, "CPE-0001", "CPE-0001")
    assert not credential_may_speak_for(credentials, "CPE-0001", "CPE-0002")


def test_a_bound_credential_speaks_for_its_devices_and_prefixes_only(credentials):
    credentials.create_or_update("fleet", "secret")
    assert bind_credential(credentials, "fleet", ["os::gw-1", "os::00D09E-sim-*"])
    for identity, allowed in [("os::gw-1", True), ("os::gw-10", False),
                              ("os::00D09E-sim-00042", True), ("os::00D09E-simX", False),
                              ("fleet", False), ("", False)]:
        assert credential_may_speak_for(credentials, "fleet", identity) is allowed, identity


def test_a_new_password_keeps_the_binding(credentials):
    credentials.create_or_update("gw", "one")
    bind_credential(credentials, "gw", ["os::gw-7"])
    credentials.create_or_update("gw", "two")
    assert credential_may_speak_for(credentials, "gw", "os::gw-7")
    assert not credential_may_speak_for(credentials, "gw", "gw")


def test_no_credential_speaks_for_nobody(credentials):
    assert not credential_may_speak_for(credentials, "nobody", "nobody")
    assert not bind_credential(credentials, "nobody", ["os::x"])
    assert not speaks_for(None, "x", "x")


@pytest.mark.parametrize("entries", [["*"], [""], [" "], [42]])
def test_a_binding_to_everything_or_nothing_is_refused(credentials, entries):
    credentials.create_or_update("bad", "secret")
    with pytest.raises(BindingError):
        bind_credential(credentials, "bad", entries)
