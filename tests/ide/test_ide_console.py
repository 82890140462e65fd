"""The run console WebSocket with real NATS: stored lines first, then the live
tail, nothing missed and nothing twice; roles and origin checked."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from oktoscripts.bus import subjects
from oktoscripts.runs.models import Run, RunOutputLine

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_thread_connections():
    """The consumer's database calls run on asgiref's thread: close its
    connection after each test so the test database can be dropped."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def _session_cookie(role: str | None) -> str:
    from django.apps import apps
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from oktoscripts.roles import sync_groups

    sync_groups(apps)  # a transactional test empties the tables the migration filled
    user = User.objects.create_user(f"{role or 'none'}-{uuid.uuid4().hex[:6]}")
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _new_run(lines: int) -> str:
    run = Run.objects.create(
        script_name="console-test",
        code="print(1)",
        started_by="user",
        status="running",
        started=timezone.now(),
    )
    for seq in range(1, lines + 1):
        _store(str(run.pk), seq)
    return str(run.pk)


def _store(run_id: str, seq: int) -> None:
    RunOutputLine.objects.create(run_id=run_id, seq=seq, text=f"line {seq}", time=timezone.now())


def _finish(run_id: str) -> None:
    Run.objects.filter(pk=run_id).update(
        status="succeeded",
        finished=timezone.now(),
        result={"answer": 42},
        metrics={"duration_s": 0.01},
    )


async def _connect(run_id: str, role: str | None = "Viewer", origin: str = "http://localhost"):
    from oktoscripts.asgi import application

    cookie = await sync_to_async(_session_cookie)(role)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{run_id}/",
        headers=[
            (b"host", b"localhost"),
            (b"origin", origin.encode()),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, code


async def _publish_line(nc, run_id: str, seq: int) -> None:
    message = {
        "seq": seq,
        "stream": "stdout",
        "text": f"line {seq}",
        "level": None,
        "time": time.time(),
    }
    await nc.publish(subjects.run_output(run_id), json.dumps(message).encode())


async def _receive_until_end(communicator) -> tuple[list[int], dict]:
    seqs: list[int] = []
    while True:
        message = await communicator.receive_json_from(timeout=10)
        if message["type"] == "lines":
            seqs.extend(line["seq"] for line in message["lines"])
        elif message["type"] == "end":
            return seqs, message


async def test_replay_then_live_tail_without_duplicates_or_gaps(nats_url):
    from oktoscripts.bus.connection import connect

    run_id = await sync_to_async(_new_run)(3)
    communicator, connected, _ = await _connect(run_id)
    assert connected
    first = await communicator.receive_json_from(timeout=10)
    assert [x["seq"] for x in first["lines"]] == [1, 2, 3]
    assert (await communicator.receive_json_from(timeout=10))["status"] == "running"

    nc = await connect("console-test", nats_url)
    try:
        for seq in (2, 3, 4, 5):  # 2 and 3 were already sent from the database
            await _publish_line(nc, run_id, seq)
        await nc.flush()
        # Line 6 is published late-stored: the consumer waits for the database to have it.
        await _publish_line(nc, run_id, 7)
        await nc.flush()
        await asyncio.sleep(0.3)
        await sync_to_async(_store)(run_id, 4)
        await sync_to_async(_store)(run_id, 5)
        await sync_to_async(_store)(run_id, 6)
        await sync_to_async(_store)(run_id, 7)
        # Line 8 was never published live; the final status comes after it is stored.
        await sync_to_async(_store)(run_id, 8)
        await sync_to_async(_finish)(run_id)
        await nc.publish(
            subjects.run_status(run_id),
            json.dumps({"run_id": run_id, "status": "succeeded"}).encode(),
        )
        await nc.flush()
        seqs, end = await _receive_until_end(communicator)
    finally:
        await nc.close()
        await communicator.disconnect()
    assert [1, 2, 3] + seqs == [1, 2, 3, 4, 5, 6, 7, 8]
    assert end["status"] == "succeeded" and end["result"] == {"answer": 42}


async def test_reconnecting_later_shows_everything_once(nats_url):
    run_id = await sync_to_async(_new_run)(5)
    await sync_to_async(_finish)(run_id)
    communicator, connected, _ = await _connect(run_id)
    assert connected
    seqs, end = await _receive_until_end(communicator)
    assert seqs == [1, 2, 3, 4, 5] and end["status"] == "succeeded"
    await communicator.disconnect()


async def test_after_parameter_skips_lines_the_browser_has(nats_url):
    from oktoscripts.asgi import application

    run_id = await sync_to_async(_new_run)(5)
    await sync_to_async(_finish)(run_id)
    cookie = await sync_to_async(_session_cookie)("Viewer")
    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{run_id}/?after=3",
        headers=[
            (b"host", b"localhost"),
            (b"origin", b"http://localhost"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    seqs, _ = await _receive_until_end(communicator)
    assert seqs == [4, 5]
    await communicator.disconnect()


async def _refusal(communicator, connected) -> int:
    """A refused console is opened and closed with a code the page can report
    (a handshake refused outright is a bare 1006 to the browser)."""
    assert connected
    closed = await communicator.receive_output(timeout=10)
    assert closed["type"] == "websocket.close"
    return closed["code"]


async def test_users_without_a_role_are_refused(nats_url):
    run_id = await sync_to_async(_new_run)(1)
    communicator, connected, _ = await _connect(run_id, role=None)
    assert await _refusal(communicator, connected) == 4403


async def test_an_unknown_run_is_refused_with_its_code(nats_url):
    communicator, connected, _ = await _connect(str(uuid.uuid4()))
    assert await _refusal(communicator, connected) == 4404


async def test_a_stale_queued_message_never_takes_the_status_back(nats_url):
    """The run's "queued" message arrives after the run was read as running
    (the console subscribed before the run was submitted): the status shown
    only moves forward."""
    from oktoscripts.bus.connection import connect

    run_id = await sync_to_async(_new_run)(1)
    communicator, connected, _ = await _connect(run_id)
    assert connected
    assert (await communicator.receive_json_from(timeout=10))["type"] == "lines"
    assert (await communicator.receive_json_from(timeout=10))["status"] == "running"
    nc = await connect("console-test", nats_url)
    try:
        await nc.publish(
            subjects.run_status(run_id), json.dumps({"run_id": run_id, "status": "queued"}).encode()
        )
        await sync_to_async(_store)(run_id, 2)
        await _publish_line(nc, run_id, 2)
        await nc.publish(
            subjects.run_status(run_id),
            json.dumps({"run_id": run_id, "status": "listening"}).encode(),
        )
        await sync_to_async(_finish)(run_id)
        await nc.publish(
            subjects.run_status(run_id),
            json.dumps({"run_id": run_id, "status": "succeeded"}).encode(),
        )
        await nc.flush()
        messages = []
        while not messages or messages[-1]["type"] != "end":
            messages.append(await communicator.receive_json_from(timeout=10))
    finally:
        await nc.close()
        await communicator.disconnect()
    statuses = [m["status"] for m in messages if m["type"] in ("status", "end")]
    assert statuses == ["listening", "succeeded"]


async def test_foreign_origin_is_refused(nats_url):
    run_id = await sync_to_async(_new_run)(1)
    communicator, connected, _ = await _connect(run_id, origin="http://evil.example")
    assert not connected


async def test_console_opened_before_the_run_exists_gets_all_of_it(nats_url):
    from oktoscripts.asgi import application
    from oktoscripts.bus.connection import connect

    run_id = str(uuid.uuid4())
    cookie = await sync_to_async(_session_cookie)("Viewer")
    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{run_id}/?pending=1",
        headers=[
            (b"host", b"localhost"),
            (b"origin", b"http://localhost"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected

    def create() -> None:
        Run.objects.create(
            id=run_id, script_name="early", code="", started_by="user", status="running"
        )
        _store(run_id, 1)

    nc = await connect("console-test", nats_url)
    try:
        await sync_to_async(create)()
        await _publish_line(nc, run_id, 1)
        await _publish_line(nc, run_id, 2)
        await nc.flush()
        await sync_to_async(_store)(run_id, 2)
        await sync_to_async(_finish)(run_id)
        await nc.publish(
            subjects.run_status(run_id),
            json.dumps({"run_id": run_id, "status": "succeeded"}).encode(),
        )
        await nc.flush()
        seqs, end = await _receive_until_end(communicator)
    finally:
        await nc.close()
        await communicator.disconnect()
    assert seqs == [1, 2] and end["status"] == "succeeded"


async def test_a_pending_console_whose_run_never_comes_is_closed(nats_url, monkeypatch):
    from ide import consumers
    from oktoscripts.asgi import application

    monkeypatch.setattr(consumers, "PENDING_WAIT_S", 0.3)
    cookie = await sync_to_async(_session_cookie)("Viewer")
    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{uuid.uuid4()}/?pending=1",
        headers=[
            (b"host", b"localhost"),
            (b"origin", b"http://localhost"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    closed = await communicator.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": 4404}
    without_pending, connected, _ = await _connect(str(uuid.uuid4()))
    assert await _refusal(without_pending, connected) == 4404


async def test_a_console_whose_messages_were_lost_catches_up_and_ends(nats_url, monkeypatch):
    """Messages published while the web process moved to another NATS server
    never arrive: a quiet console reads the lines and the end from the database."""
    from oktoscripts.runs import live

    monkeypatch.setattr(live, "RESYNC_S", 0.3)
    run_id = await sync_to_async(_new_run)(2)
    communicator, connected, _ = await _connect(run_id)
    assert connected
    first = await communicator.receive_json_from(timeout=10)
    assert [x["seq"] for x in first["lines"]] == [1, 2]
    assert (await communicator.receive_json_from(timeout=10))["status"] == "running"
    await sync_to_async(_store)(run_id, 3)  # published live to nobody
    await sync_to_async(_store)(run_id, 4)
    await sync_to_async(_finish)(run_id)  # and so was its final status
    try:
        seqs, end = await _receive_until_end(communicator)
    finally:
        await communicator.disconnect()
    assert seqs == [3, 4] and end["status"] == "succeeded"


async def test_tail_gives_only_the_last_stored_lines(nats_url):
    """A console asking for the tail of a long run gets its last lines only (the
    page fetches earlier ones by seq when they scroll into view)."""
    from oktoscripts.asgi import application

    run_id = await sync_to_async(_new_run)(30)
    await sync_to_async(_finish)(run_id)
    cookie = await sync_to_async(_session_cookie)("Viewer")
    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{run_id}/?after=0&tail=5",
        headers=[
            (b"host", b"localhost"),
            (b"origin", b"http://localhost"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    seqs, end = await _receive_until_end(communicator)
    await communicator.disconnect()
    assert seqs == [26, 27, 28, 29, 30] and end["status"] == "succeeded"


@pytest.mark.parametrize("path", ["/ws/no-such-route/", "/ws/runs/not-a-uuid/", "/anything"])
async def test_a_socket_to_a_path_with_no_route_is_refused(path):
    """Refused at the handshake: the router raised for such a path, and the
    web process answered 500 with a traceback in its log."""
    from oktoscripts.asgi import application

    communicator = WebsocketCommunicator(
        application, path, headers=[(b"host", b"localhost"), (b"origin", b"http://localhost")]
    )
    connected, code = await communicator.connect(timeout=10)
    assert not connected and code == 1000
    await communicator.wait()
