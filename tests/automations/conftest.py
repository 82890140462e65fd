"""Fixtures of the automation tests: scripts, workers and scheduler processes."""

from __future__ import annotations

import pytest

from tests.processes import ManagePyProcess, started_processes
from tests.runs.conftest import (  # noqa: F401 - fixtures shared with the run tests
    close_async_db_connections,
    nc,
    process_env,
    start_worker,
    wait_for_status,
    worker_command,
    worker_process,
)


@pytest.fixture
def make_script(transactional_db):
    """Create a saved script: make_script(name, content) -> Script (latest set)."""
    from django.contrib.auth.models import User

    from oktoscripts.scripts.editing import create_script

    def make(name: str, content: str):
        user = User.objects.filter(username="ops").first() or User.objects.create_user("ops")
        return create_script(user, name, content)

    return make


@pytest.fixture
def operator(transactional_db):
    from django.apps import apps
    from django.contrib.auth.models import Group, User

    from oktoscripts.roles import sync_groups

    sync_groups(apps)  # a transactional test flushes the groups the migration made
    user = User.objects.create_user("operator1")
    user.groups.add(Group.objects.get(name="Operator"))
    return user


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

    def make(n: int, name: str | None = None) -> ManagePyProcess:
        name = name or f"sched{n}"
        args = ["--interval", "0.2", "--id", name]
        return ManagePyProcess("scheduler", args, scheduler_env, tmp_path / f"{name}.log")

    with started_processes(make) as start:
        yield start


@pytest.fixture
def platform_worker(scheduler_env, tmp_path):
    """``manage.py worker`` processes that reach MongoDB (get_device works in scripts)."""
    with started_processes(
        lambda n: worker_command(scheduler_env, tmp_path / f"pworker{n}.log")
    ) as start:
        yield start


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
