"""A worker survives a restart of the NATS server and takes runs again at once."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from oktoscripts.launcher.embedded.nats import NatsServerConfig
from oktoscripts.launcher.embedded.ports import free_port, wait_for_port
from oktoscripts.runs.models import Run
from oktoscripts.runs.submit import asubmit_run

from .conftest import HEARTBEAT_S, LOST_AFTER_S, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


class OwnNats:
    """A nats-server of this test alone, restartable on the same port and store."""

    def __init__(self, directory) -> None:
        self.config = NatsServerConfig(directory, free_port(), free_port())
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.config.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert wait_for_port("127.0.0.1", self.config.port, 20)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


async def test_worker_takes_runs_again_after_nats_restarts(tmp_path):
    from oktoscripts.bindings.services import Services
    from oktoscripts.bus.connection import connect
    from oktoscripts.runs.worker import Worker, WorkerOptions

    server = OwnNats(tmp_path / "nats")
    server.start()
    worker_nc = await connect("restart-worker", server.config.url)
    client = await connect("restart-client", server.config.url)
    options = WorkerOptions(
        concurrency=10, lua_threads=1, heartbeat_s=HEARTBEAT_S, lost_after_s=LOST_AFTER_S
    )
    worker = Worker(worker_nc, Services(nats=worker_nc), options)
    try:
        await worker.start()
        before = await asubmit_run("return 'before'", nc=client)
        assert (await wait_for_status(before.pk, Run.FINAL)).result == "before"
        server.stop()
        await asyncio.sleep(1)
        server.start()
        while not (worker_nc.is_connected and client.is_connected):
            await asyncio.sleep(0.1)
        after = await asubmit_run("return 'after'", nc=client)
        # Well before the server would expire the lost pull requests (10 s).
        after = await wait_for_status(after.pk, Run.FINAL, timeout=8)
        assert (after.status, after.result) == ("succeeded", "after")
    finally:
        await worker.stop(grace_s=0)
        await worker_nc.close()
        await client.close()
        server.stop()
