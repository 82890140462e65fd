"""Device identifiers: what is accepted where they enter, and TR-069's CPE usernames."""

from __future__ import annotations

import pytest

from oktoscripts.devices import identifiers
from oktoscripts.devices.identifiers import (
    InvalidIdentifier,
    check_serial,
    cwmp_device_id_problem,
    tr069_usernames,
)


@pytest.mark.parametrize(
    "serial",
    ["ABC123", "00:11:22:33:44:55", "SN-1.2_3", "Série ü 7", "a" * 64],
)
def test_real_world_serials_are_accepted(serial):
    assert cwmp_device_id_problem("00A0B1", "IGD", serial) is None
    assert check_serial(serial) == serial


@pytest.mark.parametrize(
    ("serial", "why"),
    [
        ("", "is empty"),
        ("a/b", "contains '/'"),
        ("..\\x", "contains '\\\\'"),
        ("line\nbreak", "control character U+000A"),
        ("tab\there", "control character U+0009"),
        ("nel\x85", "control character U+0085"),
        ("evil\u202egnp.exe", "control character U+202E"),  # right-to-left override
        ("zero\u200bwidth", "control character U+200B"),
        (" padded", "white space"),
        ("a" * 65, "longer than 64"),
    ],
)
def test_hostile_serials_are_refused_with_the_reason(serial, why):
    problem = cwmp_device_id_problem("00A0B1", "IGD", serial)
    assert problem is not None and problem.startswith("SerialNumber") and why in problem
    assert "\n" not in problem and "\u202e" not in problem  # safe in a log line


def test_oui_and_product_class_rules():
    assert cwmp_device_id_problem("00a0b1", "", "SN1") is None  # lower case and empty class
    for oui in ("", "00A0B", "00A0B1C", "GGGGGG", "00 A0B"):
        assert cwmp_device_id_problem(oui, "IGD", "SN1").startswith("OUI")
    assert cwmp_device_id_problem("00A0B1", "IG/D", "SN1").startswith("ProductClass")


def test_registry_serials_may_be_longer_but_not_hostile():
    check_serial("os::00256D-" + "x" * 100)
    for bad in ("a/b", "x\ny", "", "x" * 200, None, 7):
        with pytest.raises(InvalidIdentifier):
            check_serial(bad)


def test_tr069_usernames_escape_product_class_and_serial():
    # TR-069 3.4.4: everything but 0-9, A-Z, a-z and "_" percent-encoded, as UTF-8.
    assert tr069_usernames("00A0B1", "IGD", "SN_1") == ("00A0B1-IGD-SN_1", "00A0B1-SN_1")
    assert tr069_usernames("00A0B1", "Home GW", "a-b.c") == (
        "00A0B1-Home%20GW-a%2Db%2Ec",
        "00A0B1-a%2Db%2Ec",
    )
    assert tr069_usernames("00A0B1", "", "é") == ("00A0B1--%C3%A9", "00A0B1-%C3%A9")
    assert identifiers.is_tr069_username("00A0B1-a%2Db%2Ec")
    assert not identifiers.is_tr069_username("cpe-user")
    assert not identifiers.is_tr069_username("os::00A0B1-SN1")
