"""HTTP Basic and Digest (RFC 7616, MD5, qop=auth) for both directions of CWMP:
CPE -> ACS (the ACS checks) and ACS -> CPE Connection Requests (the ACS answers a
challenge). The simulator uses the same functions in the other roles.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def ha1(username: str, realm: str, password: str) -> str:
    return md5_hex(f"{username}:{realm}:{password}")


def parse_auth_params(value: str) -> dict[str, str]:
    """The key=value pairs of a Digest header (quoted or not), keys lowercased."""
    return {k.lower(): (q if q else u).replace('\\"', '"') for k, q, u in _PARAM.findall(value)}


def split_scheme(header: str) -> tuple[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), rest.strip()


def basic_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


def parse_basic(rest: str) -> tuple[str, str] | None:
    try:
        user, sep, password = base64.b64decode(rest, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def digest_response(
    ha1_hex: str, method: str, uri: str, nonce: str, nc: str, cnonce: str, qop: str
) -> str:
    ha2 = md5_hex(f"{method}:{uri}")
    if qop:
        return md5_hex(f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return md5_hex(f"{ha1_hex}:{nonce}:{ha2}")


def answer_challenge(
    challenge: str, username: str, password: str, method: str, uri: str, nc: int = 1
) -> str | None:
    """The Authorization header answering a WWW-Authenticate challenge
    (Digest or Basic); None when the scheme is not supported."""
    scheme, rest = split_scheme(challenge)
    if scheme == "basic":
        return basic_header(username, password)
    if scheme != "digest":
        return None
    params = parse_auth_params(rest)
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        return None
    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else ""
    cnonce = secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    response = digest_response(
        ha1(username, realm, password), method, uri, nonce, nc_text, cnonce, qop
    )
    parts = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        "algorithm=MD5",
    ]
    if "opaque" in params:
        parts.append(f'opaque="{params["opaque"]}"')
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


class NonceIssuer:
    """Stateless nonces: a timestamp and a random part signed with a
    per-process key, so a nonce can be checked on any connection without
    remembering the nonces handed out (anyone may ask for a challenge:
    nothing is kept for them). A nonce expires ``lifetime`` seconds after it
    was issued."""

    def __init__(self, key: bytes | None = None, lifetime: float = 24 * 3600) -> None:
        self.key = key or os.urandom(32)
        self.lifetime = lifetime

    def issue(self) -> str:
        # Random as well as timed: every challenge is a new nonce, whose counts start at 1.
        stamped = f"{int(time.time()):x}.{secrets.token_hex(6)}"
        return stamped + "." + self._sign(stamped)

    def valid(self, nonce: str) -> bool:
        return self.expires_at(nonce) > time.time()

    def expires_at(self, nonce: str) -> float:
        """When a nonce this issuer made expires (0 for any other text)."""
        stamped, _, sig = nonce.rpartition(".")
        if not stamped or not hmac.compare_digest(sig, self._sign(stamped)):
            return 0.0
        try:
            return int(stamped.partition(".")[0], 16) + self.lifetime
        except ValueError:
            return 0.0

    def _sign(self, stamp: str) -> str:
        return hmac.new(self.key, stamp.encode(), hashlib.sha256).hexdigest()[:24]


class NonceCounts:
    """The highest nonce count each (nonce, username) was accepted with. A
    request whose count is not above it replays an earlier Authorization
    header (RFC 7616 3.4): refused, even on a new connection. Only accepted
    authentications are remembered, each until its nonce expires, so nobody
    without a credential can grow the table."""

    def __init__(self, issuer: NonceIssuer, sweep_every_s: float = 60.0) -> None:
        self.issuer = issuer
        self.sweep_every_s = sweep_every_s
        self._seen: dict[tuple[str, str], tuple[int, float]] = {}
        self._next_sweep = time.monotonic() + sweep_every_s

    def accept(self, nonce: str, username: str, count: int) -> bool:
        """Record a valid answer to ``nonce`` with nonce count ``count``;
        False when that count (or a higher one) was accepted before."""
        key = (nonce, username)
        last = self._seen.get(key)
        if last is not None and count <= last[0]:
            return False
        self._seen[key] = (count, self.issuer.expires_at(nonce))
        if time.monotonic() >= self._next_sweep:
            self._sweep()
        return True

    def _sweep(self) -> None:
        now = time.time()
        self._seen = {key: seen for key, seen in self._seen.items() if seen[1] > now}
        self._next_sweep = time.monotonic() + self.sweep_every_s

    def __len__(self) -> int:
        return len(self._seen)


def nonce_count(params: dict[str, str]) -> int | None:
    """The request's nonce count: its ``nc`` (hex) with qop, 1 without qop
    (RFC 2069 answers carry none: each nonce is then good for one request);
    None when it is malformed."""
    if not params.get("qop"):
        return 1
    text = params.get("nc", "")
    if len(text) > 16:
        return None
    try:
        count = int(text, 16)
    except ValueError:
        return None
    return count if count > 0 else None


def challenge(realm: str, nonce: str, stale: bool = False) -> str:
    header = f'Digest realm="{realm}", qop="auth", nonce="{nonce}", algorithm=MD5'
    return header + (", stale=true" if stale else "")


def check_digest(params: dict[str, str], method: str, ha1_hex: str) -> bool:
    """Whether a Digest Authorization (already parsed) proves knowledge of ``ha1_hex``."""
    expected = digest_response(
        ha1_hex,
        method,
        params.get("uri", ""),
        params.get("nonce", ""),
        params.get("nc", ""),
        params.get("cnonce", ""),
        params.get("qop", ""),
    )
    return hmac.compare_digest(expected, params.get("response", ""))
