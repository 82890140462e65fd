"""What the platform accepts as a device identifier, and how TR-069 names a CPE.

A device's identifier comes from the device itself (a CWMP DeviceId, a USP
Endpoint ID), so it is attacker-controlled text that ends up as a MongoDB key,
in URLs of the IDE and the REST API, in NATS subjects, in file names of
exports and in log lines. It is checked where it enters:

- CWMP DeviceId (TR-069 Annex A, DeviceIdStruct): OUI is six hexadecimal
  digits; ProductClass (may be empty) and SerialNumber are string(64).
- Any serial the registry stores: at most ``MAX_SERIAL`` characters.
- Both: no control, format or unassigned characters (newlines would forge log
  lines, bidirectional overrides would disguise a serial on screen), no ``/``
  or ``\\`` (path separators in URLs and file names), not only dots (``..``
  in a URL path means the parent), no leading or trailing white space (two
  devices that look the same).

Pages and URLs must still cope with any value stored before these rules.

TR-069 section 3.4.4 recommends that a CPE authenticate with a username of the
form ``OUI "-" ProductClass "-" SerialNumber`` or ``OUI "-" SerialNumber``,
where every character of ProductClass and SerialNumber other than 0-9, A-Z,
a-z and ``_`` is percent-encoded (as UTF-8 octets): ``tr069_usernames`` gives
both for a DeviceId, and a credential named so speaks for exactly that CPE.
"""

from __future__ import annotations

import re
import unicodedata

TR069_STRING_MAX = 64  # string(64) of ProductClass and SerialNumber
MAX_SERIAL = 128  # any protocol's identifier in the registry (USP Endpoint IDs are longer)
_OUI = re.compile(r"[0-9A-Fa-f]{6}\Z")
_SEPARATORS = frozenset("/\\")
_TR069_KEPT = re.compile(r"[0-9A-Za-z_]")
# A username of one of the TR-069 forms: OUI, then one or two escaped fields.
_TR069_USERNAME = re.compile(r"[0-9A-Fa-f]{6}-[0-9A-Za-z_%]*(-[0-9A-Za-z_%]+)?\Z")
_ESCAPE = re.compile(r"%[0-9a-f]{2}")


class InvalidIdentifier(ValueError):
    """An identifier the platform refuses; the message names the field and why."""


def text_problem(value: object, max_len: int, allow_empty: bool = False) -> str | None:
    """Why ``value`` cannot be an identifier, or None if it can."""
    if not isinstance(value, str):
        return "is not a string"
    if not value:
        return None if allow_empty else "is empty"
    if len(value) > max_len:
        return f"is longer than {max_len} characters"
    for ch in value:
        if ch in _SEPARATORS:
            return f"contains {ch!r}"
        if unicodedata.category(ch).startswith("C"):
            return f"contains the control character U+{ord(ch):04X}"
    if value != value.strip():
        return "starts or ends with white space"
    if not value.strip("."):
        return "is a path segment of dots"
    return None


def check_serial(serial: object) -> str:
    """``serial`` if the registry may store it, else InvalidIdentifier."""
    problem = text_problem(serial, MAX_SERIAL)
    if problem:
        raise InvalidIdentifier(f"device serial {serial!r} {problem}")
    return serial


def cwmp_device_id_problem(oui: str, product_class: str, serial_number: str) -> str | None:
    """What is wrong with a CWMP DeviceId, or None when it is acceptable.
    (Lower-case OUIs are tolerated: real firmware sends them.)"""
    if not _OUI.match(oui):
        return f"OUI {oui!r} is not six hexadecimal digits"
    for name, value, allow_empty in (
        ("ProductClass", product_class, True),
        ("SerialNumber", serial_number, False),
    ):
        problem = text_problem(value, TR069_STRING_MAX, allow_empty)
        if problem:
            return f"{name} {value!r} {problem}"
    return None


def tr069_escape(text: str) -> str:
    """TR-069 3.4.4 escaping: every character but 0-9, A-Z, a-z and ``_``
    becomes the percent-encoding of its UTF-8 octets."""
    return "".join(
        ch if _TR069_KEPT.match(ch) else "".join(f"%{b:02X}" for b in ch.encode()) for ch in text
    )


def tr069_usernames(oui: str, product_class: str, serial_number: str) -> tuple[str, str]:
    """The two usernames TR-069 3.4.4 gives a CPE: OUI-ProductClass-SerialNumber
    and OUI-SerialNumber."""
    serial = tr069_escape(serial_number)
    return f"{oui}-{tr069_escape(product_class)}-{serial}", f"{oui}-{serial}"


def is_tr069_username(username: str) -> bool:
    """Whether ``username`` has one of the TR-069 3.4.4 forms, in which case it
    names a CPE by its DeviceId and nothing else."""
    return bool(_TR069_USERNAME.match(username))


def normal_tr069_username(username: str) -> str:
    """The same username with its percent-escapes in upper case, as
    ``tr069_usernames`` writes them (RFC 3986 makes both cases equivalent)."""
    return _ESCAPE.sub(lambda m: m.group().upper(), username)
