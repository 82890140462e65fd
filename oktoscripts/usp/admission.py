"""Who may open a WebSocket MTP session in the name of an Endpoint ID.

The Endpoint ID in the handshake is a claim. It is believed when:

- the TLS client certificate (verified against the platform's CA) names it
  in a subjectAltName URI ``urn:bbf:usp:id:<eid>`` (how TR-369 agents such
  as obuspa authenticate: they send no Authorization header); a certificate
  naming other Endpoint IDs refuses the claim, whatever else is sent;
- or, lacking a certificate, HTTP Basic carries a device credential whose
  password is right and which is bound to that Endpoint ID
  (``DeviceBinding`` in devices/credentials.py).

Modes (``OKTOSCRIPTS_USP_WS_AUTH``): ``on`` either proof; ``cert`` the
certificate only; ``off`` nothing is checked (a lab behind its own walls).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

MODES = ("on", "cert", "off")

# (username, password, endpoint id) -> "ok" | "bad-password" | "not-bound"
CredentialCheck = Callable[[str, str, str], Awaitable[str]]


def auth_mode(value: object) -> str | None:
    """The mode a setting names (booleans are on/off), or None if it names none."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return "on"
    if text in ("0", "false", "no", "off"):
        return "off"
    return text if text in MODES else None


def check_credential(credentials: Any, username: str, password: str, endpoint_id: str) -> str:
    """A device credential (of a CredentialStore) claiming ``endpoint_id``: "ok",
    "bad-password" or "not-bound". Blocking: it may compute a password hash."""
    if not credentials.verify_basic(username, password):
        return "bad-password"
    binding = credentials.binding(username)
    if binding is None or not binding.permits(endpoint_id):
        return "not-bound"
    return "ok"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


@dataclass(frozen=True)
class Verdict:
    status: HTTPStatus | None  # None: admitted
    detail: str  # why: for the log line of a refusal, or how the claim was proven

    @property
    def admitted(self) -> bool:
        return self.status is None


class Admission:
    def __init__(self, mode: str, check_credential: CredentialCheck | None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown WebSocket authentication mode {mode!r}")
        self.mode = mode
        self.check_credential = check_credential

    async def admit(
        self, eid: str, certificate_ids: list[str], authorization: str | None
    ) -> Verdict:
        """Whether a handshake claiming ``eid`` is let in, given the Endpoint IDs of
        its verified client certificate and its Authorization header."""
        if self.mode == "off":
            return Verdict(None, "authentication off")
        if certificate_ids:
            if eid in certificate_ids:
                return Verdict(None, "client certificate")
            return Verdict(
                HTTPStatus.FORBIDDEN, f"its client certificate is for {', '.join(certificate_ids)}"
            )
        if self.mode == "cert":
            return Verdict(HTTPStatus.UNAUTHORIZED, "no client certificate")
        creds = basic_credentials(authorization)
        if creds is None:
            return Verdict(HTTPStatus.UNAUTHORIZED, "no client certificate nor credentials")
        outcome = "bad-password"
        if self.check_credential is not None:
            outcome = await self.check_credential(creds[0], creds[1], eid)
        if outcome == "ok":
            return Verdict(None, f"credential {creds[0]!r}")
        if outcome == "not-bound":
            return Verdict(
                HTTPStatus.FORBIDDEN,
                f"the credential {creds[0]!r} is not bound to this Endpoint ID",
            )
        return Verdict(HTTPStatus.UNAUTHORIZED, f"bad credentials for {creds[0]!r}")
