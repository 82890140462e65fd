"""Signed download URLs: ``/files/<file id>/<name>?sn=<serial>&exp=<unix
time>&sig=<HMAC>``, good for one device until a time. The key derives from
SECRET_KEY, so every process of an installation signs and checks alike, and
the URL gives nothing to anyone but that device until it expires.

A script asks for a stored file in a Download by the URL ``store:<name>``;
the ACS puts a signed URL to itself in its place for the CPE at hand.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qs, quote, urlencode, urlsplit

PREFIX = "/files/"
STORE_SCHEME = "store:"
DEFAULT_TTL_S = 3600


def _key(secret: str | None = None) -> bytes:
    if secret is None:
        from django.conf import settings

        secret = settings.SECRET_KEY
    return hashlib.sha256(b"oktoscripts file download\0" + secret.encode()).digest()


def _signature(file_id: str, serial: str, expires: int, secret: str | None) -> str:
    message = f"{file_id}\n{serial}\n{expires}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signed_path(
    file_id: str,
    name: str,
    serial: str,
    ttl_s: int = DEFAULT_TTL_S,
    secret: str | None = None,
    now: float | None = None,
) -> str:
    expires = int((now or time.time()) + ttl_s)
    query = urlencode(
        {"sn": serial, "exp": expires, "sig": _signature(file_id, serial, expires, secret)}
    )
    return f"{PREFIX}{file_id}/{quote(name)}?{query}"


def verify(target: str, secret: str | None = None, now: float | None = None) -> str | None:
    """The file id a request target names when its signature is good and not
    expired; None otherwise."""
    parts = urlsplit(target)
    if not parts.path.startswith(PREFIX):
        return None
    file_id = parts.path[len(PREFIX) :].split("/", 1)[0]
    query = parse_qs(parts.query)
    try:
        serial, expires, sig = query["sn"][0], int(query["exp"][0]), query["sig"][0]
    except (KeyError, IndexError, ValueError):
        return None
    if expires < (now or time.time()):
        return None
    if not hmac.compare_digest(sig, _signature(file_id, serial, expires, secret)):
        return None
    return file_id
