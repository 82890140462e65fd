"""A worker process's /metrics: what its runs and device calls did, and who may read it."""

from __future__ import annotations

import asyncio
import time

import pytest

from oktoscripts.launcher.embedded.ports import free_port
from oktoscripts.runs.submit import asubmit_run
from tests.processes import ManagePyProcess, started_processes
from tests.runs.conftest import wait_for_status

from .scrape import get, loopback_alias_works, samples, total, value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

TOKEN = "scrape-me-7f3a"


@pytest.fixture
def start_worker_process(process_env, tmp_path):
    """``manage.py worker`` with the metrics environment given."""

    def make(n: int, metrics_env: dict[str, str]) -> ManagePyProcess:
        env = {**process_env, **metrics_env}
        return ManagePyProcess("worker", ["--lua-threads", "2"], env, tmp_path / f"w{n}.log")

    with started_processes(make) as start:
        yield start


async def scrape_until(port: int, done, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body = await asyncio.to_thread(get, port)
        assert status == 200, body
        found = samples(body)
        if done(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_a_worker_counts_its_runs_and_device_calls(nc, start_worker_process):
    port = free_port()
    start_worker_process({"OKTOSCRIPTS_METRICS_PORT": str(port)})
    ok = await asubmit_run("return 1", nc=nc, started_by="api")
    bad = await asubmit_run("error('boom')", nc=nc, started_by="cli")
    # No USP controller runs: the call ends at once as "unavailable".
    call = await asubmit_run(
        'return send_usp_message("proto::nobody", {header = {msg_type = "GET"}, '
        'body = {request = {get = {param_paths = {"Device."}}}}})',
        nc=nc,
        started_by="api",
    )
    held = await asubmit_run("sleep(30)", nc=nc, started_by="user")
    for run in (ok, bad, call):
        await wait_for_status(run.pk, ("succeeded", "failed"))
    await wait_for_status(held.pk, "running")

    found = await scrape_until(port, lambda f: total(f, "oktoscripts_runs_finished_total") >= 3)
    assert value(found, "oktoscripts_runs_started_total", started_by="api") == 2
    assert value(found, "oktoscripts_runs_started_total", started_by="cli") == 1
    assert value(found, "oktoscripts_runs_started_total", started_by="user") == 1
    assert (
        value(found, "oktoscripts_runs_finished_total", status="succeeded", started_by="api") == 2
    )
    assert value(found, "oktoscripts_runs_finished_total", status="failed", started_by="cli") == 1
    assert value(found, "oktoscripts_run_duration_seconds_count", status="succeeded") == 2
    assert value(found, "oktoscripts_run_queue_wait_seconds_count") == 4
    assert value(found, "oktoscripts_worker_runs_held") == 1
    assert value(found, "oktoscripts_worker_lua_threads_stuck") == 0
    assert (
        value(found, "oktoscripts_device_calls_total", protocol="usp", outcome="unavailable") == 1
    )
    assert (
        value(found, "oktoscripts_device_call_seconds_count", protocol="usp", outcome="unavailable")
        == 1
    )
    # The process's own figures come along (CPU, memory).
    assert value(found, "process_resident_memory_bytes") > 0


@pytest.mark.skipif(not loopback_alias_works(), reason="127.0.0.2 cannot be bound here")
def test_only_the_token_or_an_allowed_network_may_scrape(start_worker_process):
    port = free_port()
    start_worker_process(
        {
            "OKTOSCRIPTS_METRICS_PORT": str(port),
            "OKTOSCRIPTS_METRICS_TOKEN": TOKEN,
            "OKTOSCRIPTS_METRICS_ALLOW": "127.0.0.2/32",
        }
    )
    status, body = get(port)  # from 127.0.0.1: not allowed, no token
    assert status == 401 and "token" in body and "oktoscripts_" not in body
    assert get(port, token="wrong")[0] == 401
    status, body = get(port, token=TOKEN)
    assert status == 200 and "oktoscripts_worker_runs_held" in body
    status, body = get(port, source="127.0.0.2")  # the allowed network, no token needed
    assert status == 200 and "oktoscripts_worker_runs_held" in body
    assert get(port, token=TOKEN, path="/")[0] == 404


def test_a_bad_metrics_setting_is_reported_and_the_worker_still_runs(
    start_worker_process, tmp_path
):
    worker = start_worker_process({"OKTOSCRIPTS_METRICS_PORT": "ninety"})
    log = worker.log.read_text()
    assert "no /metrics: OKTOSCRIPTS_METRICS_PORT: expected a port number or off" in log
    assert worker.proc.poll() is None


async def test_a_stuck_lua_thread_shows_until_it_is_free(nc, start_worker_process):
    port = free_port()
    start_worker_process({"OKTOSCRIPTS_METRICS_PORT": str(port)})
    # A backtracking string.find: one C call of many seconds that no hook
    # interrupts; the run ends at its wall limit and its thread is abandoned.
    runaway = await asubmit_run(
        'return string.find(string.rep("a", 2500), ".-.-b")', limits={"wall_seconds": 1}, nc=nc
    )
    await wait_for_status(runaway.pk, "limit_exceeded")
    found = await scrape_until(
        port, lambda f: value(f, "oktoscripts_worker_lua_threads_stuck") == 1, timeout=5
    )
    assert value(found, "oktoscripts_worker_lua_threads_stuck") == 1
    assert (
        value(found, "oktoscripts_runs_finished_total", status="limit_exceeded", started_by="api")
        == 1
    )
