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

from tests import browser_site

SESSION_ID = uuid.uuid4().hex[:8]
os.environ["OKTOSCRIPTS_BUS_PREFIX"] = f"t{SESSION_ID}"
os.environ["OKTOSCRIPTS_MONGO_DB"] = f"oktotest_{SESSION_ID}"


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from oktoscripts.launcher.embedded.services import EmbeddedServices

    services = EmbeddedServices(tmp_path_factory.mktemp("embedded"))
    yield services
    services.stop()


@pytest.fixture(scope="session")
def nats_url(embedded) -> Iterator[str]:
    """The NATS server of this test session (the configured one, else embedded).
    The JetStream streams and buckets of the session's prefix are deleted at the end."""
    from django.conf import settings

    url = os.environ.get("NATS_URL") or embedded.start_nats()
    settings.NATS_URL = url
    yield url
    _delete_session_streams(url)


def _delete_session_streams(url: str) -> None:
    import asyncio

    import nats

    from oktoscripts.bus.streams import delete_prefixed
    from oktoscripts.bus.subjects import prefix

    async def delete() -> None:
        nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
        try:
            await delete_prefixed(nc.jetstream(), prefix())
        finally:
            await nc.close()

    try:
        asyncio.run(delete())
    except Exception as exc:  # noqa: BLE001 - cleanup must not fail the session
        print(f"could not delete the session's JetStream streams: {exc}")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An SQLite test database in a file (not in memory), so that platform
    processes a test starts (worker, web) share it with the test."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")


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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium through Playwright, for a browser test module
    (tests.browser_site: ``login`` signs a new page in, ``shot`` saves a screenshot)."""
    browser_site.SHOTS.mkdir(exist_ok=True)
    with browser_site.chromium() as b:
        yield b
