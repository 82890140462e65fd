"""Fixtures of the run tests: a NATS client, in-process workers, worker processes."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.processes import ManagePyProcess, started_processes

# Short heartbeats so that lost-run tests take seconds, not minutes.
HEARTBEAT_S = 0.2
LOST_AFTER_S = 1.5


@pytest.fixture(autouse=True)
async def close_async_db_connections():
    """Close the connection Django's async ORM opened in its thread, so the test
    database (PostgreSQL) can be dropped at the end."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
async def nc(nats_url):
    from oktoscripts.bus.connection import connect

    client = await connect("tests", nats_url)
    yield client
    await client.close()


@pytest.fixture
async def start_worker(nc, transactional_db):
    """Start in-process workers (stopped at the end of the test)."""
    from oktoscripts.bindings.services import Services
    from oktoscripts.runs.worker import Worker, WorkerOptions

    workers = []

    async def start(concurrency: int = 100, worker_id: str | None = None, services=None):
        options = WorkerOptions(
            concurrency=concurrency,
            lua_threads=2,
            heartbeat_s=HEARTBEAT_S,
            lost_after_s=LOST_AFTER_S,
        )
        worker = Worker(nc, services or Services(nats=nc), options, worker_id)
        await worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        await worker.stop(grace_s=0)


def database_url() -> str:
    """The test database as a DATABASE_URL for processes the test starts."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db.get("USER") or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def process_env(nats_url, transactional_db, data_dir) -> dict[str, str]:
    """Environment of a platform process sharing this test's NATS, bus prefix and database."""
    env = dict(os.environ)
    env.update(
        {
            "NATS_URL": nats_url,
            "DATABASE_URL": database_url(),
            "OKTOSCRIPTS_DATA_DIR": str(data_dir),
            "OKTOSCRIPTS_WORKER_HEARTBEAT": str(HEARTBEAT_S),
            "OKTOSCRIPTS_WORKER_LOST_AFTER": str(LOST_AFTER_S),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("MONGO_URI", None)
    return env


def worker_command(env: dict[str, str], log: Path) -> ManagePyProcess:
    return ManagePyProcess("worker", ["--lua-threads", "2"], env, log)


@pytest.fixture
def worker_process(process_env, tmp_path):
    """Start ``manage.py worker`` processes (stopped at the end of the test)."""
    with started_processes(
        lambda n: worker_command(process_env, tmp_path / f"worker{n}.log")
    ) as start:
        yield start


async def wait_for_status(run_id, statuses, timeout: float = 20.0):
    """Poll the database until the run reaches one of ``statuses``; returns the Run."""
    from oktoscripts.runs.models import Run

    if isinstance(statuses, str):
        statuses = (statuses,)
    deadline = time.monotonic() + timeout
    while True:
        run = await Run.objects.aget(pk=run_id)
        if run.status in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run stayed {run.status}, expected {statuses}")
        await asyncio.sleep(0.02)
