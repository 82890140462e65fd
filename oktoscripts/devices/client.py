"""The process's MongoDB client and its default device registry.

pymongo's MongoClient is thread-safe and holds a connection pool, so one per
process is right; it is made on first use from ``settings.MONGO_URI`` and
``settings.MONGO_DB_NAME``. Code that has its own database (tests, the
worker) builds ``DeviceRegistry(db)`` itself instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pymongo
from pymongo.database import Database

if TYPE_CHECKING:
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.devices.registry import DeviceRegistry

T = TypeVar("T")
_lock = threading.Lock()
_clients: dict[str, pymongo.MongoClient] = {}
_registries: dict[tuple[str, str], DeviceRegistry] = {}
_credentials: dict[tuple[str, str], CredentialStore] = {}


def mongo_client(uri: str | None = None) -> pymongo.MongoClient:
    """The shared client for ``uri`` (default: the configured MONGO_URI)."""
    from django.conf import settings

    from oktoscripts.config import ConfigError

    uri = uri or settings.MONGO_URI
    if not uri:
        raise ConfigError(
            "MONGO_URI",
            "not set and no embedded MongoDB is running (start `python manage.py up` "
            "or set MONGO_URI)",
        )
    with _lock:
        client = _clients.get(uri)
        if client is None:
            client = pymongo.MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)
            _clients[uri] = client
        return client


def mongo_database() -> Database:
    """The platform's database on the shared client."""
    from django.conf import settings

    return mongo_client()[settings.MONGO_DB_NAME]


def _per_database(cache: dict, make: Callable[[Database], T]) -> T:
    """One store per configured database and process, its indexes ensured once."""
    from django.conf import settings

    key = (settings.MONGO_URI, settings.MONGO_DB_NAME)
    with _lock:
        store = cache.get(key)
    if store is None:
        store = make(mongo_database())
        store.ensure_indexes()
        with _lock:
            store = cache.setdefault(key, store)
    return store


def default_registry() -> DeviceRegistry:
    """The process's registry on the configured database."""
    from oktoscripts.devices.registry import DeviceRegistry

    return _per_database(_registries, DeviceRegistry)


def default_credentials() -> CredentialStore:
    """The process's credential store on the configured database."""
    from oktoscripts.devices.credentials import CredentialStore

    return _per_database(_credentials, CredentialStore)
