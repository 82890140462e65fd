"""The debugger WebSocket over real NATS and a real worker: the browser's
requests reach the worker holding the run, events come back; only those
who may run scripts may debug, and only their own debug runs."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from oktoscripts.runs.models import Run
from oktoscripts.runs.submit import asubmit_run
from tests.runs.conftest import wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
async def worker(nats_url, transactional_db):
    from oktoscripts.bindings.services import Services
    from oktoscripts.bus.connection import connect
    from oktoscripts.runs.worker import Worker, WorkerOptions

    nc = await connect("debug-test", nats_url)
    options = WorkerOptions(concurrency=10, lua_threads=2, heartbeat_s=0.5, lost_after_s=5)
    w = Worker(nc, Services(nats=nc), options)
    await w.start()
    yield nc
    await w.stop(grace_s=0)
    await nc.close()


def _user(role: str):
    from django.apps import apps
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from oktoscripts.roles import sync_groups

    sync_groups(apps)
    user = User.objects.create_user(f"{role.lower()}-{uuid.uuid4().hex[:6]}")
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return user, client.cookies["sessionid"].value


async def _connect(run_id: str, cookie: str, origin: bytes = b"http://localhost"):
    from oktoscripts.asgi import application

    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{run_id}/debug/",
        headers=[
            (b"host", b"localhost"),
            (b"origin", origin),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, code


async def _until(communicator, kind: str, **match) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=20)
        if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
            return message


async def test_debugging_through_the_websocket(worker):
    user, cookie = await sync_to_async(_user)("Operator")
    run = await asubmit_run(
        "local t = {1, 2}\nlocal n = #t\nreturn n\n",
        nc=worker,
        debug=True,
        user=user,
        started_by="user",
    )
    ws, connected, _ = await _connect(str(run.pk), cookie)
    assert connected
    await ws.send_json_to({"id": 1, "op": "configure", "breakpoints": [{"line": 2}]})
    reply = await _until(ws, "reply", id=1)
    assert reply["ok"]
    paused = await _until(ws, "debug", event="paused")
    assert paused["line"] == 2 and paused["frames"][0]["name"] == "main chunk"
    await ws.send_json_to({"id": 2, "op": "evaluate", "expression": "t[2] * 10"})
    assert (await _until(ws, "reply", id=2))["result"]["value"] == "20"
    await ws.send_json_to({"id": 3, "op": "resume", "command": "nonsense"})
    assert "unknown command" in (await _until(ws, "reply", id=3))["error"]
    await ws.send_json_to({"op": 5})
    assert (await _until(ws, "reply", id=None))["error"] == "a request is an object with an op"
    await ws.send_to(text_data="not json {")
    assert (await _until(ws, "reply", id=None))["error"] == "a request is an object with an op"
    await ws.send_json_to({"id": 4, "op": "resume", "command": "continue"})
    assert (await _until(ws, "debug", event="ended"))["status"] == "succeeded"
    await ws.disconnect()
    # "ended" comes from the worker as the outcome is being stored
    assert (await wait_for_status(run.pk, Run.FINAL)).result == 2


@pytest.mark.parametrize("role", ["Viewer", "Author"])
async def test_viewers_and_authors_cannot_debug(worker, role):
    owner, _ = await sync_to_async(_user)("Operator")
    run = await asubmit_run("return 1", nc=worker, debug=True, user=owner, started_by="user")
    _, cookie = await sync_to_async(_user)(role)
    _, connected, code = await _connect(str(run.pk), cookie)
    assert not connected and code == 4403


async def test_only_the_runs_owner_or_an_admin_may_debug_it(worker):
    owner, _ = await sync_to_async(_user)("Operator")
    run = await asubmit_run("return 1", nc=worker, debug=True, user=owner, started_by="user")
    _, other = await sync_to_async(_user)("Operator")
    _, connected, code = await _connect(str(run.pk), other)
    assert not connected and code == 4403
    _, admin = await sync_to_async(_user)("Admin")
    _, connected, _ = await _connect(str(run.pk), admin, origin=b"http://evil.example")
    assert not connected  # another site's page cannot drive it
    ws, connected, _ = await _connect(str(run.pk), admin)
    assert connected
    await ws.disconnect()
    normal = await asubmit_run("return 1", nc=worker, user=owner, started_by="user")
    _, owner_cookie = await sync_to_async(_user)("Operator")
    _, connected, code = await _connect(str(normal.pk), owner_cookie)
    assert not connected and code == 4404
    await asyncio.sleep(0)


@pytest.fixture
def roles(transactional_db):
    """A transactional test empties the tables the roles migration filled."""
    from django.apps import apps

    from oktoscripts.roles import sync_groups

    sync_groups(apps)


def test_breakpoints_are_kept_per_user_and_script(roles, client_for, users):
    from oktoscripts.scripts.models import Script

    script = Script.objects.create(name="bp-script")
    url = f"/api/scripts/{script.pk}/breakpoints"
    operator, admin = client_for("operator"), client_for("admin")
    points = [{"line": 3}, {"line": 7, "condition": "n > 2", "hit": 2, "log": ""}]
    reply = operator.put(url, {"breakpoints": points}, content_type="application/json")
    assert reply.status_code == 200
    assert operator.get(url).json()["breakpoints"] == [
        {"line": 3, "condition": "", "hit": 0, "log": ""},
        {"line": 7, "condition": "n > 2", "hit": 2, "log": ""},
    ]
    assert admin.get(url).json()["breakpoints"] == []  # each user has their own
    bad = operator.put(url, {"breakpoints": [{"line": 0}]}, content_type="application/json")
    assert bad.status_code == 400 and "line" in bad.json()["error"]
    for role in ("viewer", "author"):
        assert client_for(role).get(url).status_code == 403
        denied = client_for(role).put(url, {"breakpoints": []}, content_type="application/json")
        assert denied.status_code == 403


def test_only_runners_start_debug_runs(roles, client_for, users):
    from oktoscripts.scripts import editing
    from oktoscripts.scripts.models import Script

    script = Script.objects.create(name="dbg-rest")
    editing.save_version(users["admin"], script, "return 1")
    body = {"script_id": script.pk, "debug": True}
    for role in ("viewer", "author"):
        reply = client_for(role).post("/api/runs", body, content_type="application/json")
        assert reply.status_code == 403
