"""USP Endpoint IDs: ``authority-scheme ":" [authority-id] ":" instance-id`` (TR-369)."""

from __future__ import annotations

import re

# The authority schemes TR-369 defines for Endpoint IDs.
AUTHORITY_SCHEMES = frozenset(
    {"oui", "cid", "pen", "self", "user", "os", "ops", "uuid", "imei", "proto", "doi", "fqdn"}
)
_ENDPOINT_ID = re.compile(r"^([a-z]+):([A-Za-z0-9\-._]*):([A-Za-z0-9\-._%:]+)$")


def endpoint_id_problem(value: str) -> str | None:
    """None when ``value`` is a well-formed Endpoint ID, else what is wrong with it."""
    if not value or len(value) > 255:
        return "an Endpoint ID must be 1 to 255 characters"
    match = _ENDPOINT_ID.match(value)
    if not match:
        return "an Endpoint ID looks like scheme:authority:instance, e.g. oui:00256D:agent-1"
    if match.group(1) not in AUTHORITY_SCHEMES:
        return f"unknown authority scheme {match.group(1)!r}"
    return None
