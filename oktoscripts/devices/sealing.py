"""Sealing secrets the platform must be able to read back.

The connection-request password of a CPE cannot be hashed: the ACS answers
the CPE's Digest challenge with it, so it must be recoverable. It is stored
encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from Django's
SECRET_KEY, so a copy of the database alone does not reveal it. Changing
SECRET_KEY makes the sealed values unreadable: the ACS then treats the
device as having no connection-request password until the CPE reports it
again (it does on its next boot or when the ACS sets it).

Sealed form: ``"v1:" + urlsafe-base64(nonce(12) + ciphertext + tag)``.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PREFIX = "v1:"
_keys: dict[tuple[str, bytes], AESGCM] = {}


class UnsealError(ValueError):
    """A sealed value that this key cannot open (other SECRET_KEY, or damaged)."""


def _secret_key() -> str:
    from django.conf import settings

    return settings.SECRET_KEY


def _cipher(purpose: bytes, secret: str | None = None) -> AESGCM:
    secret = secret if secret is not None else _secret_key()
    cache_key = (secret, purpose)
    cipher = _keys.get(cache_key)
    if cipher is None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"oktoscripts-sealing", info=purpose
        ).derive(secret.encode())
        cipher = _keys[cache_key] = AESGCM(key)
    return cipher


def seal(plaintext: str, purpose: bytes, secret: str | None = None) -> str:
    """Encrypt ``plaintext``; ``purpose`` binds it to one use (a different key per use)."""
    nonce = os.urandom(12)
    sealed = _cipher(purpose, secret).encrypt(nonce, plaintext.encode(), purpose)
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(sealed: str, purpose: bytes, secret: str | None = None) -> str:
    """The plaintext of a value made by ``seal`` with the same purpose and key."""
    if not sealed.startswith(_PREFIX):
        raise UnsealError("not a sealed value")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :])
        return _cipher(purpose, secret).decrypt(raw[:12], raw[12:], purpose).decode()
    except (InvalidTag, ValueError) as exc:
        raise UnsealError("cannot open the sealed value with this SECRET_KEY") from exc
