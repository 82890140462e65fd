"""Which devices a device credential may speak for.

A password proves that the sender knows the password of a credential; on its
own it says nothing about which device is talking. Without a binding, anyone
holding any credential (a single compromised CPE's, say) could claim to be
any other device. So a credential speaks only for the identities it is bound
to: the CWMP DeviceId serial or the USP Endpoint ID the device announces.

The binding is the credential document's ``devices`` field, a list of
identities; an entry ending in ``*`` is a prefix (``os::00D09E-sim-*`` for a
fleet of agents sharing a credential). A credential without the field speaks
only for the device whose identity is its username (a USP Endpoint ID holds
":" and cannot be an HTTP Basic username: agents need an explicit binding,
or a client certificate).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FIELD = "devices"
MAX_ENTRIES = 10_000


class BindingError(ValueError):
    """A list of identities that cannot be a binding."""


def speaks_for(doc: dict[str, Any] | None, username: str, identity: str) -> bool:
    """Whether the credential document ``doc`` (of ``username``) may speak for ``identity``."""
    if not doc or not identity:
        return False
    entries = doc.get(FIELD)
    if entries is None:
        return identity == username
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            continue
        if entry.endswith("*") and identity.startswith(entry[:-1]):
            return True
        if entry == identity:
            return True
    return False


def credential_may_speak_for(credentials: Any, username: str, identity: str) -> bool:
    """Whether the credential ``username`` of a CredentialStore may speak for ``identity``
    (the caller has checked its password)."""
    doc = credentials.collection.find_one({"username": username}, {FIELD: 1})
    return speaks_for(doc, username, identity)


def bind_credential(credentials: Any, username: str, identities: Iterable[str]) -> bool:
    """Bind an existing credential to ``identities`` (replacing its binding).
    False when there is no such credential."""
    entries = list(identities)
    if len(entries) > MAX_ENTRIES:
        raise BindingError(f"at most {MAX_ENTRIES} identities per credential")
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip() or entry.strip() == "*":
            raise BindingError(f"not a device identity: {entry!r}")
    result = credentials.collection.update_one({"username": username}, {"$set": {FIELD: entries}})
    return result.matched_count == 1
