"""Device credentials: how a CPE or a USP agent proves who it is.

Collection ``device_credentials``, one document per username (unique index).
No password is stored in clear, nor anything from which it is cheap to get:

- ``basic``: a salted scrypt hash (per-credential random salt, N=2^14, r=8,
  p=1), checked in constant time. It verifies HTTP Basic and MTP passwords.
- ``digest``: ``[{realm, ha1}]`` with HA1 = MD5(username:realm:password).
  HTTP Digest cannot be verified from a slow hash: the server must compute
  MD5(HA1:nonce:...:HA2) itself, so it needs HA1. HA1 is bound to its realm:
  a leaked HA1 does not give the password (short of a brute force of an MD5
  per guess, which is why the scrypt hash, not HA1, is what Basic checks) and
  is useless with any other realm; it is, however, enough to answer Digest
  challenges of this realm, so the collection must be protected like a
  password file.

The realm is ``OKTOSCRIPTS_DIGEST_REALM`` (default "oktoscripts"). Rotating
it: change the setting and restart; HA1s of the old realm stay stored but no
longer match, so each device's password must be set again (which computes
the HA1 of the new realm and drops the old ones); Basic keeps working
meanwhile because the scrypt hash does not depend on the realm.

A credential speaks for the devices it names (``DeviceBinding``), never for
any other: the device its username names (the serial itself, a USP Endpoint
ID, or one of TR-069's ``OUI-SerialNumber`` / ``OUI-ProductClass-SerialNumber``
forms, see identifiers.py), and the serials listed in its ``devices`` field
(for CPEs whose username names no device, and USP agents: an Endpoint ID
holds ":", which an HTTP Basic username cannot). An entry ending in ``*`` is
a prefix, for a fleet sharing one credential (``os::00D09E-sim-*``). A device
that authenticates with a credential and claims another identity is refused
by the protocol servers.
A future kind of credential (an onboarding credential that lets a new device
in once) would be another field of the document read into the binding.

scrypt costs tens of milliseconds by design, and many CPEs send Basic
credentials on every request: successful checks are remembered in memory
under an HMAC of (username, password, stored hash) with a per-process key,
so a changed password or a restart invalidates them, and nothing kept in
memory reveals the password either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from oktoscripts import config
from oktoscripts.devices import identifiers

COLLECTION = "device_credentials"
DEFAULT_REALM = "oktoscripts"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_LEN = 32
_CACHE_SIZE = 10_000


class CredentialError(ValueError):
    """A username or password the platform does not accept."""


def digest_realm() -> str:
    """The configured HTTP Digest realm."""
    try:
        from django.conf import settings

        realm = getattr(settings, "DIGEST_REALM", None)
    except Exception:  # Django not configured: a bare script
        realm = None
    return realm or config.text("OKTOSCRIPTS_DIGEST_REALM") or DEFAULT_REALM


def ha1(username: str, realm: str, password: str) -> str:
    """HTTP Digest HA1 (RFC 7616, MD5): MD5(username:realm:password), hex."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def check_username_password(username: object, password: object) -> None:
    """The platform's rule: non-empty strings without a dot (docs/lua-api.md)."""
    for what, value in (("username", username), ("password", password)):
        if not isinstance(value, str) or not value:
            raise CredentialError(f"the {what} must be a non-empty string")
        if "." in value:
            raise CredentialError(f"the {what} must not contain a dot")


PREFIX = "*"
MAX_DEVICES = 10_000


def check_devices(devices: object) -> list[str]:
    """The serials (and ``prefix*`` entries) a credential is bound to,
    checked and without repeats. A prefix must name something: ``*`` alone
    would be a credential for every device."""
    if isinstance(devices, str) or not isinstance(devices, Iterable):
        raise CredentialError("devices must be a list of device serials")
    entries = list(dict.fromkeys(devices))
    if len(entries) > MAX_DEVICES:
        raise CredentialError(f"a credential speaks for at most {MAX_DEVICES} devices")
    try:
        for entry in entries:
            is_prefix = isinstance(entry, str) and entry.endswith(PREFIX)
            identifiers.check_serial(entry[: -len(PREFIX)] if is_prefix else entry)
    except identifiers.InvalidIdentifier as exc:
        raise CredentialError(str(exc)) from None
    return entries


@dataclass(frozen=True)
class DeviceBinding:
    """The devices one credential may speak for."""

    username: str
    serials: frozenset[str] = frozenset()  # serials, and prefixes ending in PREFIX

    def permits(self, serial: str) -> bool:
        """Whether the credential speaks for the device of registry serial
        ``serial`` (a CWMP SerialNumber, a USP Endpoint ID)."""
        return serial == self.username or self._lists(serial)

    def permits_cwmp(self, oui: str, product_class: str, serial_number: str) -> bool:
        """Whether the credential speaks for the CPE of this DeviceId. A
        username of a TR-069 form names a CPE by its whole DeviceId only."""
        if self._lists(serial_number):
            return True
        if identifiers.is_tr069_username(self.username):
            name = identifiers.normal_tr069_username(self.username)
            return name in identifiers.tr069_usernames(oui, product_class, serial_number)
        return serial_number == self.username

    def _lists(self, serial: str) -> bool:
        if serial in self.serials:
            return True
        return any(
            entry.endswith(PREFIX) and serial.startswith(entry[: -len(PREFIX)])
            for entry in self.serials
        )


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_LEN, maxmem=64 * 1024 * 1024
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class CredentialStore:
    """The device credentials of one MongoDB database."""

    def __init__(self, db: Database, *, collection: str = COLLECTION) -> None:
        self.collection: Collection = db[collection]
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._cache_key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def ensure_indexes(self) -> None:
        self.collection.create_index("username", unique=True, name="username_unique")

    def create_or_update(
        self,
        username: str,
        password: str,
        realm: str | None = None,
        devices: Iterable[str] | None = None,
    ) -> bool:
        """Create or replace a credential. True if it was new. ``devices``:
        the serials it speaks for beside the one its username names (None
        keeps those of an existing credential). Raises CredentialError for a
        username, password or serial the platform refuses."""
        result = self.collection.bulk_write([self._write(username, password, realm, devices)])
        return bool(result.upserted_count)

    def create_or_update_many(
        self, pairs: Iterable[tuple[str, str]], realm: str | None = None
    ) -> int:
        """Create or replace many credentials in one write (hashing them on
        two threads: scrypt is slow by design). Returns how many were new."""
        pairs = list(pairs)
        for username, password in pairs:
            check_username_password(username, password)
        with ThreadPoolExecutor(2) as pool:
            writes = list(pool.map(lambda pair: self._write(*pair, realm, None), pairs))
        if not writes:
            return 0
        return self.collection.bulk_write(writes, ordered=False).upserted_count

    def _write(
        self, username: str, password: str, realm: str | None, devices: Iterable[str] | None
    ) -> UpdateOne:
        check_username_password(username, password)
        realm = realm or digest_realm()
        salt = os.urandom(16)
        doc: dict[str, object] = {
            "basic": {
                "alg": "scrypt",
                "n": SCRYPT_N,
                "r": SCRYPT_R,
                "p": SCRYPT_P,
                "salt": _b64(salt),
                "hash": _b64(_scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)),
            },
            # A new password invalidates the HA1s of every realm: keep only this one.
            "digest": [{"realm": realm, "ha1": ha1(username, realm, password)}],
            "updated_at": datetime.now(UTC),
        }
        if devices is not None:
            doc["devices"] = check_devices(devices)
        return UpdateOne(
            {"username": username},
            {"$set": doc, "$setOnInsert": {"created_at": doc["updated_at"]}},
            upsert=True,
        )

    def verify_basic(self, username: str, password: str) -> bool:
        """Whether ``password`` is the password of ``username`` (constant-time check)."""
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        doc = self.collection.find_one({"username": username}, {"basic": 1})
        basic = (doc or {}).get("basic")
        if not basic or basic.get("alg") != "scrypt":
            return False
        memo = hmac.new(
            self._cache_key, f"{username}\0{password}\0{basic['hash']}".encode(), "sha256"
        ).digest()
        with self._lock:
            if memo in self._verified:
                self._verified.move_to_end(memo)
                return True
        salt = base64.b64decode(basic["salt"])
        expected = base64.b64decode(basic["hash"])
        actual = _scrypt(password, salt, basic["n"], basic["r"], basic["p"])
        if not hmac.compare_digest(actual, expected):
            return False
        with self._lock:
            self._verified[memo] = None
            if len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return True

    def digest_ha1(self, username: str, realm: str | None = None) -> str | None:
        """HA1 of ``username`` for ``realm`` (default: the configured realm),
        or None if there is no such credential or no HA1 for that realm."""
        realm = realm or digest_realm()
        doc = self.collection.find_one({"username": username}, {"digest": 1})
        for entry in (doc or {}).get("digest") or []:
            if entry.get("realm") == realm:
                return entry.get("ha1")
        return None

    def binding(self, username: str) -> DeviceBinding | None:
        """The devices ``username`` speaks for; None if there is no such credential."""
        doc = self.collection.find_one({"username": username}, {"devices": 1})
        if doc is None:
            return None
        return DeviceBinding(username, frozenset(doc.get("devices") or ()))

    def bind(self, username: str, devices: Iterable[str]) -> bool:
        """Bind the credential ``username`` to ``devices`` (replacing its list,
        keeping its password). False when there is no such credential."""
        entries = check_devices(devices)
        result = self.collection.update_one({"username": username}, {"$set": {"devices": entries}})
        return result.matched_count == 1

    def existing(self, usernames: Iterable[str]) -> set[str]:
        """Which of ``usernames`` have a credential."""
        names = list(usernames)
        found = self.collection.find({"username": {"$in": names}}, {"username": 1, "_id": 0})
        return {doc["username"] for doc in found}

    def exists(self, username: str) -> bool:
        return self.collection.count_documents({"username": username}, limit=1) == 1

    def delete(self, username: str) -> bool:
        return self.collection.delete_one({"username": username}).deleted_count == 1

    def bindings(self) -> list[DeviceBinding]:
        """Every credential's binding, by username."""
        docs = self.collection.find({}, {"username": 1, "devices": 1}).sort("username")
        return [DeviceBinding(d["username"], frozenset(d.get("devices") or ())) for d in docs]

    def usernames(self) -> list[str]:
        return [d["username"] for d in self.collection.find({}, {"username": 1}).sort("username")]
