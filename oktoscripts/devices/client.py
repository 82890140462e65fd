"""MongoDB clients: the one factory (new_client), the process's shared client
and its default device registry.

Every MongoDB client of the platform is made by new_client, so all have the
same options: ``tz_aware`` (dates come back as aware UTC datetimes, which the
code compares with its own) and a server-selection timeout, so an
unreachable server fails a call in seconds instead of hanging it.

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
SELECTION_TIMEOUT_S = 5.0
_lock = threading.Lock()
_clients: dict[str, pymongo.MongoClient] = {}
_registries: dict[tuple[str, str], DeviceRegistry] = {}
_credentials: dict[tuple[str, str], CredentialStore] = {}


def new_client(
    uri: str,
    *,
    timeout_s: float = SELECTION_TIMEOUT_S,
    probe: bool = False,
    connect: bool = True,
    asynchronous: bool = False,
) -> pymongo.MongoClient | pymongo.AsyncMongoClient:
    """A new client for ``uri``. ``probe``: connecting and every read time out
    after ``timeout_s`` too (a health check or preflight, which must answer
    quickly); ``connect=False``: no connection before the first operation;
    ``asynchronous``: pymongo's asyncio client."""
    ms = int(timeout_s * 1000)
    options: dict = {"tz_aware": True, "serverSelectionTimeoutMS": ms, "connect": connect}
    if probe:
        options.update(connectTimeoutMS=ms, socketTimeoutMS=ms)
    kind = pymongo.AsyncMongoClient if asynchronous else pymongo.MongoClient
    return kind(uri, **options)


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
            client = new_client(uri)
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
