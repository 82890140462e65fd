"""Who a CPE's request proves to be, from its headers alone (HTTP Basic or
Digest against the device credentials), for the ACS to decide before it reads
a body.

- A Digest answer is good once: nonces carry a random part, are signed by this
  process and expire after ``NONCE_LIFETIME_S``; the nonce count of each
  (nonce, user) must go up (httpauth.NonceCounts), so a captured
  Authorization header replayed on any connection is refused as stale.
- A source address that keeps failing is refused without a check for a while
  (throttle.py): a Basic password costs an scrypt check.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from oktoscripts.cwmp.backend import DeviceBackend
from oktoscripts.cwmp.http11 import Request, Response
from oktoscripts.cwmp.httpauth import (
    NonceCounts,
    NonceIssuer,
    challenge,
    check_digest,
    nonce_count,
    parse_auth_params,
    parse_basic,
    split_scheme,
)
from oktoscripts.cwmp.onboarding import FACTORY_USER, FactoryCredentials
from oktoscripts.cwmp.throttle import FailureThrottle

log = logging.getLogger("oktoscripts.cwmp.acs")  # what operators watch: one logger for the ACS

# How long a Digest nonce is good (a CPE then answers a fresh challenge).
NONCE_LIFETIME_S = 900.0


class CpeAuthenticator:
    def __init__(self, backend: DeviceBackend, factory: FactoryCredentials | None = None) -> None:
        self.backend = backend
        # OKTOSCRIPTS_ACS_AUTH=onboard: these prove FACTORY_USER, whom the ACS
        # admits only for a DeviceId without a credential of its own.
        self.factory = factory
        self.nonces = NonceIssuer(lifetime=NONCE_LIFETIME_S)
        self.nonce_counts = NonceCounts(self.nonces)
        self.throttle = FailureThrottle()  # failed authentications per source address

    def challenge(self, stale: bool = False) -> Response:
        """The 401 that asks for credentials (Digest; Basic clients answer it too)."""
        header = challenge(self.backend.realm, self.nonces.issue(), stale)
        return Response(401, [("WWW-Authenticate", header)])

    async def authenticate(
        self, request: Request, peer_ip: str, challenged: bool = False
    ) -> tuple[str | None, bool]:
        """(user, stale): the credential the request's headers prove, or None;
        stale when a fresh nonce is all the client needs (RFC 7616). A request
        without credentials after a challenge on its connection (``challenged``)
        proves the empty factory credential, when that one is configured: a CPE
        with credentials answers the challenge with them instead."""
        if not request.headers.get("authorization"):
            if challenged and self.factory is not None and self.factory.admits_no_credentials():
                return FACTORY_USER, False
            return None, False
        if self.throttle.blocked(peer_ip):
            if self.throttle.first_refusal(peer_ip):
                log.warning(
                    "CPE %s: %d failed authentications within %g s: its credentials are "
                    "not checked until that time has passed",
                    peer_ip,
                    self.throttle.limit,
                    self.throttle.window_s,
                )
            return None, False
        user, stale = await self._check(request, peer_ip)
        if user is None and not stale:
            self.throttle.failed(peer_ip)
        return user, stale

    async def _check(self, request: Request, peer_ip: str) -> tuple[str | None, bool]:
        scheme, rest = split_scheme(request.headers.get("authorization", ""))
        if scheme == "basic":
            pair = parse_basic(rest)
            if pair is not None and self.factory is not None and self.factory.basic(*pair):
                return FACTORY_USER, False
            if pair is not None and await self.backend.verify_basic(
                *pair, allowed=lambda: not self.throttle.blocked(peer_ip)
            ):
                return pair[0], False
            log.warning(
                "CPE %s: Basic authentication failed for user %r", peer_ip, pair and pair[0]
            )
            return None, False
        if scheme != "digest":
            return None, False
        params = parse_auth_params(rest)
        nonce = params.get("nonce", "")
        if not self.nonces.valid(nonce):
            return None, True
        username = params.get("username", "")
        count = nonce_count(params)
        if (
            self.factory is not None
            and username in self.factory.usernames()
            and count is not None
            and urlsplit(params.get("uri", "")).path == urlsplit(request.target).path
            and self.factory.digest(params, request.method)
        ):
            if not self.nonce_counts.accept(nonce, FACTORY_USER + username, count):
                return None, True
            return FACTORY_USER, False
        ha1 = await self.backend.digest_ha1(username)
        if (
            ha1 is None
            or count is None
            or urlsplit(params.get("uri", "")).path != urlsplit(request.target).path
            or not check_digest(params, request.method, ha1)
        ):
            log.warning("CPE %s: Digest authentication failed for user %r", peer_ip, username)
            return None, False
        if not self.nonce_counts.accept(nonce, username, count):
            log.warning(
                "CPE %s: Digest answer of user %r replayed (nonce count %s already used): refused",
                peer_ip,
                username,
                params.get("nc", ""),
            )
            return None, True
        return username, False
