"""Fixtures of the automation tests: scripts, workers and scheduler processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runs.conftest import (  # noqa: F401 - fixtures shared with the run tests
    ROOT,
    close_async_db_connections,
    nc,
    process_env,
    start_worker,
    wait_for_status,
    worker_process,
)


@pytest.fixture
def make_script(transactional_db):
    """Create a saved script: make_script(name, content) -> Script (latest set)."""
    from django.contrib.auth.models import User

    from ide.scripts import create_script

    def make(name: str, content: str):
        user = User.objects.filter(username="ops").first() or User.objects.create_user("ops")
        return create_script(user, name, content)

    return make


@pytest.fixture
def operator(transactional_db):
    from django.apps import apps
    from django.contrib.auth.models import Group, User

    from ide.roles import sync_groups

    sync_groups(apps)  # a transactional test flushes the groups the migration made
    user = User.objects.create_user("operator1")
    user.groups.add(Group.objects.get(name="Operator"))
    return user


class SchedulerProcess:
    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "scheduler",
                "--interval",
                "0.2",
                "--id",
                name,
            ],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready" in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"scheduler exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"scheduler not ready in {timeout}s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            import os

            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            import os

            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)


@pytest.fixture
def scheduler_env(process_env, mongo_uri):  # noqa: F811 - the imported fixture
    import os

    env = dict(process_env)
    env["MONGO_URI"] = mongo_uri
    env["OKTOSCRIPTS_MONGO_DB"] = os.environ["OKTOSCRIPTS_MONGO_DB"]
    return env


@pytest.fixture
def scheduler_process(scheduler_env, tmp_path):
    """Start ``manage.py scheduler`` processes (stopped at the end of the test)."""
    procs: list[SchedulerProcess] = []

    def start(name: str | None = None) -> SchedulerProcess:
        name = name or f"sched{len(procs)}"
        proc = SchedulerProcess(scheduler_env, tmp_path / f"{name}.log", name)
        procs.append(proc)
        proc.wait_ready()
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def platform_worker(scheduler_env, tmp_path):
    """``manage.py worker`` processes that reach MongoDB (get_device works in scripts)."""
    from tests.runs.conftest import WorkerProcess

    procs: list = []

    def start():
        proc = WorkerProcess(scheduler_env, tmp_path / f"pworker{len(procs)}.log")
        procs.append(proc)
        proc.wait_ready()
        return proc

    yield start
    for proc in procs:
        proc.kill(signal.SIGTERM)


@pytest.fixture
def registry(mongo_uri):
    """The device registry of the test session's database, emptied before the test."""
    from oktoscripts.devices.client import default_registry

    reg = default_registry()
    reg.collection.delete_many({})
    return reg


@pytest.fixture
async def automation_service(nc, mongo_uri, transactional_db):  # noqa: F811 - the imported fixture
    """An AutomationService in the test's event loop (stopped at the end)."""
    from asgiref.sync import sync_to_async

    from oktoscripts.automations.service import AutomationService
    from oktoscripts.devices.client import default_registry

    services = []

    async def start(owner: str = "test-scheduler") -> AutomationService:
        registry = await sync_to_async(default_registry)()
        service = AutomationService(nc, registry, interval=0.2, owner=owner)
        await service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        await service.stop()


@pytest.fixture(scope="session", autouse=True)
def close_blocking_nats(nats_url):
    """Close the process's background NATS client (REST views and BlockingAnnouncer
    use it) before the session's nats-server stops, so it does not reconnect for ever."""
    yield
    from oktoscripts.bus import blocking

    blocking.close()
