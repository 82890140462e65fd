"""Fixtures of the device registry tests: a fresh MongoDB database per test."""

from __future__ import annotations

import uuid

import pymongo
import pytest

from oktoscripts.devices.credentials import CredentialStore
from oktoscripts.devices.registry import DeviceRegistry


@pytest.fixture(scope="session")
def mongo_client(mongo_uri):
    client = pymongo.MongoClient(mongo_uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def mdb(mongo_client):
    """A database of its own for one test, dropped after it."""
    from django.conf import settings

    name = f"{settings.MONGO_DB_NAME}_{uuid.uuid4().hex[:8]}"
    yield mongo_client[name]
    mongo_client.drop_database(name)


@pytest.fixture
def registry(mdb) -> DeviceRegistry:
    registry = DeviceRegistry(mdb)
    registry.ensure_indexes()
    return registry


@pytest.fixture
def credentials(mdb) -> CredentialStore:
    store = CredentialStore(mdb)
    store.ensure_indexes()
    return store
