"""CWMP sessions: what the ACS remembers between the HTTP requests of one session.

A session starts with an Inform and ends with the ACS's 204. It is found by
its TCP connection first and by its cookie second (a CPE may open a new
connection for each request); a CPE that stops talking loses its session after
the session timeout.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from oktoscripts.cwmp.queue import QueuedRpc
from oktoscripts.cwmp.soap import DEFAULT_CWMP_NS, CwmpFault, RpcRequest

COOKIE_NAME = "oktoacs"


@dataclass
class Expansion:
    """A GetParameterValues on partial paths that the CPE faulted: the ACS asks
    GetParameterNames for each partial path, then the leaves by name."""

    partials: list[str]
    full_names: list[str]
    fault: CwmpFault
    raw: bytes
    leaves: list[str] = field(default_factory=list)


@dataclass
class Pending:
    """The request the ACS sent and waits for the answer of."""

    request: RpcRequest
    item: QueuedRpc | None = None  # a script's request (None: the ACS's own)
    purpose: str = ""  # what an ACS request is for ("cr-credentials")
    expansion: Expansion | None = None
    sent_at: float = field(default_factory=time.monotonic)


@dataclass
class Session:
    id: str = field(default_factory=lambda: secrets.token_hex(12))
    serial: str = ""
    cwmp_ns: str = DEFAULT_CWMP_NS
    user: str | None = None  # the credential the CPE authenticated with
    pending: Pending | None = None
    started: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    provision: list[tuple[RpcRequest, str]] = field(default_factory=list)
    new_device: bool = False
    event_numbers: set[str] = field(default_factory=set)  # of the Inform
    writes: list = field(default_factory=list)  # asyncio tasks to finish before the 204
    base_url: str = ""  # scheme://host the CPE reached the ACS at (stored files' URLs)

    def touch(self) -> None:
        self.last_seen = time.monotonic()


class SessionTable:
    """Open sessions by cookie and by serial number."""

    def __init__(self) -> None:
        self.by_id: dict[str, Session] = {}
        self.by_serial: dict[str, Session] = {}

    def add(self, session: Session) -> Session | None:
        """Register ``session``; returns the session it replaces for that serial."""
        old = self.by_serial.get(session.serial)
        if old is not None and old is not session:
            self.by_id.pop(old.id, None)
        self.by_id[session.id] = session
        self.by_serial[session.serial] = session
        return old if old is not session else None

    def remove(self, session: Session) -> None:
        self.by_id.pop(session.id, None)
        if self.by_serial.get(session.serial) is session:
            del self.by_serial[session.serial]

    def from_cookie(self, header: str) -> Session | None:
        """The session named in a Cookie header; tolerates the raw Set-Cookie with
        attributes (``oktoacs=ab12; Path=/``) that some CPEs send back."""
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name.strip() == COOKIE_NAME:
                session = self.by_id.get(value.strip().strip('"'))
                if session is not None:
                    return session
        return None

    def expired(self, timeout: float) -> list[Session]:
        limit = time.monotonic() - timeout
        return [s for s in self.by_id.values() if s.last_seen < limit]

    def __len__(self) -> int:
        return len(self.by_id)
