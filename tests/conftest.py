"""Shared test fixtures: the real services every test talks to.

NATS and MongoDB are the ones named by NATS_URL and MONGO_URI when set (CI
uses the machine's NATS server); otherwise the embedded nats-server and
SecantusDB are started once per test session. Each session uses its own NATS
subject prefix and MongoDB database, so runs never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SESSION_ID = uuid.uuid4().hex[:8]
os.environ["OKTOSCRIPTS_BUS_PREFIX"] = f"t{SESSION_ID}"
os.environ["OKTOSCRIPTS_MONGO_DB"] = f"oktotest_{SESSION_ID}"


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from oktoscripts.embedded.services import EmbeddedServices

    services = EmbeddedServices(tmp_path_factory.mktemp("embedded"))
    yield services
    services.stop()


@pytest.fixture(scope="session")
def nats_url(embedded) -> str:
    """The NATS server of this test session (the configured one, else embedded)."""
    from django.conf import settings

    url = os.environ.get("NATS_URL") or embedded.start_nats()
    settings.NATS_URL = url
    return url


@pytest.fixture(scope="session")
def mongo_uri(embedded) -> Iterator[str]:
    """The MongoDB server of this test session (the configured one, else embedded).
    The session's database is dropped at the end."""
    from django.conf import settings

    uri = os.environ.get("MONGO_URI") or embedded.start_mongo()
    settings.MONGO_URI = uri
    settings.MONGO_DB_NAME = os.environ["OKTOSCRIPTS_MONGO_DB"]
    yield uri
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        client.drop_database(settings.MONGO_DB_NAME)
    except pymongo.errors.PyMongoError:
        pass
    client.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory for a platform process started by a test."""
    path = tmp_path / "var"
    path.mkdir()
    return path
