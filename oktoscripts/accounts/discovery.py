"""The OpenID Provider's endpoints, read from its discovery document.

Fetched on first use and kept for an hour, never at start-up: a provider
that is down must not stop the web process nor the local sign-in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

from oktoscripts.accounts.config import OIDCConfig

KEEP_S = 3600.0


class ProviderUnavailable(Exception):
    """The discovery document cannot be had or does not describe this issuer."""


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str
    userinfo: str
    jwks: str


_cache: dict[str, tuple[float, Endpoints]] = {}
_lock = threading.Lock()


def endpoints(config: OIDCConfig) -> Endpoints:
    """The provider's endpoints (cached for KEEP_S); ProviderUnavailable if unreachable."""
    with _lock:
        hit = _cache.get(config.discovery_url)
    if hit and time.monotonic() - hit[0] < KEEP_S:
        return hit[1]
    found = _fetch(config)
    with _lock:
        _cache[config.discovery_url] = (time.monotonic(), found)
    return found


def forget() -> None:
    """Read the discovery document again on next use (tests; a provider that moved)."""
    with _lock:
        _cache.clear()


def _fetch(config: OIDCConfig) -> Endpoints:
    url = config.discovery_url
    try:
        response = requests.get(url, timeout=config.timeout_s, verify=config.verify_tls)
        response.raise_for_status()
        doc = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"cannot read {url}: {exc}") from exc
    # OpenID Connect Discovery: the document's issuer must be exactly the one
    # configured, or tokens would be checked against another provider's keys.
    if str(doc.get("issuer", "")).rstrip("/") != config.issuer:
        raise ProviderUnavailable(
            f"{url} describes issuer {doc.get('issuer')!r}, not {config.issuer!r}"
        )
    try:
        return Endpoints(
            authorization=doc["authorization_endpoint"],
            token=doc["token_endpoint"],
            userinfo=doc["userinfo_endpoint"],
            jwks=doc["jwks_uri"],
        )
    except KeyError as exc:
        raise ProviderUnavailable(f"{url} names no {exc.args[0]}") from exc
