"""NATS nkeys and JWTs: just what answering nats-server's auth callout needs.

An nkey is an Ed25519 key written as base32 of (a prefix byte naming its
role, the 32 key bytes, a CRC-16 of both); a seed (private key) has two
prefix bytes. A NATS JWT is a JWT whose "alg" is ``ed25519-nkey``, signed
with the issuer's nkey. The Ed25519 work is done by ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX_SEED = 18 << 3
PREFIX_ACCOUNT = 0
PREFIX_SERVER = 13 << 3
PREFIX_USER = 20 << 3


class NkeyError(ValueError):
    """Text that is not an nkey of the expected kind."""


def _crc16(data: bytes) -> int:
    """CRC-16/XMODEM (polynomial 0x1021, initial 0), as nkeys use."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _encode(raw: bytes) -> str:
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def _decode(text: str) -> bytes:
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (ValueError, TypeError):
        raise NkeyError("not base32") from None
    if len(raw) < 3 or _crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
        raise NkeyError("bad checksum")
    return raw[:-2]


def public_key(prefix: int, key: Ed25519PublicKey) -> str:
    return _encode(bytes([prefix]) + key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def new_user_public_key() -> str:
    """A fresh user nkey whose private half is thrown away: the name of a user only
    nats-server itself may assign (as its no_auth_user)."""
    return public_key(PREFIX_USER, Ed25519PrivateKey.generate().public_key())


def is_public_key(text: str, prefix: int) -> bool:
    try:
        raw = _decode(text)
    except NkeyError:
        return False
    return len(raw) == 33 and raw[0] == prefix


class AccountKey:
    """An account nkey: what signs the answers of an auth callout service."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = public_key(PREFIX_ACCOUNT, private.public_key())

    @classmethod
    def generate(cls) -> AccountKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: str) -> AccountKey:
        raw = _decode(seed.strip())
        if (
            len(raw) != 34
            or raw[0] != PREFIX_SEED | (PREFIX_ACCOUNT >> 5)
            or raw[1] != (PREFIX_ACCOUNT & 31) << 3
        ):
            raise NkeyError("not an account seed")
        return cls(Ed25519PrivateKey.from_private_bytes(raw[2:]))

    @property
    def seed(self) -> str:
        raw = self._private.private_bytes_raw()
        prefix = bytes([PREFIX_SEED | (PREFIX_ACCOUNT >> 5), (PREFIX_ACCOUNT & 31) << 3])
        return _encode(prefix + raw)

    def sign_jwt(self, claims: dict[str, Any]) -> str:
        """``claims`` as a NATS JWT issued (and signed) by this account."""
        body = {"iat": int(time.time()), "iss": self.public, **claims}
        digest = hashlib.new("sha512_256", json.dumps(body, sort_keys=True).encode()).digest()
        body["jti"] = base64.b32encode(digest).decode().rstrip("=")
        header = _b64url(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
        signed = header + "." + _b64url(json.dumps(body).encode())
        return signed + "." + _b64url(self._private.sign(signed.encode()))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the caller trusts its source)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise NkeyError(f"not a JWT: {exc}") from None
