"""Worker and runscript as the OS processes users start."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from unittest.mock import ANY

import pytest
from nats.js.errors import NoKeysError

from oktoscripts.bus import subjects
from oktoscripts.runs.models import Run
from oktoscripts.runs.submit import asubmit_run
from tests.processes import ROOT

from .conftest import LOST_AFTER_S, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


async def runscript(env, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "manage.py"),
        "runscript",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def script(tmp_path):
    def write(code: str, name: str = "script.lua"):
        path = tmp_path / name
        path.write_text(code)
        return str(path)

    return write


async def test_runs_of_a_killed_worker_become_lost(nc, worker_process, start_worker):
    doomed = worker_process()
    run = await asubmit_run("print('working')\nsleep(60)", nc=nc)
    run = await wait_for_status(run.pk, "running")
    await start_worker()  # a live worker, whose sweeper notices the dead one
    doomed.kill()  # kill -9: no goodbye, its heartbeat just stops
    run = await wait_for_status(run.pk, Run.FINAL, timeout=LOST_AFTER_S * 2 + 15)
    assert run.status == "lost"
    assert run.worker_id in run.error["message"]
    assert run.finished is not None


async def test_a_worker_process_runs_a_submitted_script_and_stops_cleanly(nc, worker_process):
    worker = worker_process()
    run = await asubmit_run("return 6 * 7", nc=nc)
    run = await wait_for_status(run.pk, Run.FINAL)
    assert (run.status, run.result) == ("succeeded", 42)
    # SIGTERM: a held run gets the grace period, then is cancelled; exit status 0.
    sleeper = await asubmit_run("sleep(60)", nc=nc)
    await wait_for_status(sleeper.pk, "running")
    await asyncio.to_thread(worker.kill, signal.SIGTERM)
    assert worker.proc.returncode == 0
    sleeper = await wait_for_status(sleeper.pk, Run.FINAL)
    assert sleeper.status == "cancelled"
    kv = await nc.jetstream().key_value(subjects.kv_bucket(subjects.WORKERS_BUCKET))
    try:
        keys = await kv.keys()
    except NoKeysError:
        keys = []
    assert run.worker_id not in keys  # its heartbeat is gone


async def test_a_worker_with_a_thread_stuck_in_a_long_c_call_restarts(nc, process_env, tmp_path):
    from tests.runs.conftest import worker_command

    # A backtracking string.find is one C call of seconds that nothing can
    # interrupt: the run ends at its wall limit, but its thread goes on. The
    # worker then drains and exits with 75 so that its supervisor starts a
    # fresh one. (2,500 characters: about 14 s in LuaJIT, well past the 1 s
    # the worker tolerates; 1,500 took 3 s, which a poll could miss.)
    worker = worker_command(
        {**process_env, "OKTOSCRIPTS_WORKER_STUCK_RESTART": "1"}, tmp_path / "stuck.log"
    )
    try:
        worker.wait_ready()
        runaway = await asubmit_run(
            'return string.find(string.rep("a", 2500), ".-.-b")',
            limits={"wall_seconds": 1},
            nc=nc,
        )
        runaway = await wait_for_status(runaway.pk, Run.FINAL)
        assert runaway.status == "limit_exceeded"
        assert "could not be interrupted" in runaway.error["message"]
        await asyncio.to_thread(worker.proc.wait, 60)
        assert worker.proc.returncode == 75
        assert "stuck" in worker.log.read_text()
    finally:
        worker.stop()


async def test_scripts_that_used_to_wedge_or_crash_a_worker_leave_it_working(nc, worker_process):
    # Finalizers that ran when the runtime was closed, outside every limit,
    # and nesting that ran a Lua thread out of C stack (SIGSEGV).
    worker_process()
    spinning_gc = (
        "local p = newproxy(true); getmetatable(p).__gc = function() while true do end end; "
        'KEEP = p; return "ok"'
    )
    crashing = [
        "local function f(n) coroutine.wrap(f)(n + 1) end\nreturn pcall(f, 1)",
        'local function f(s) return (s:gsub(".", f)) end\nreturn pcall(f, "aa")',
    ]
    submitted = [await asubmit_run(spinning_gc, nc=nc) for _ in range(5)]
    submitted += [await asubmit_run(source, nc=nc) for source in crashing]
    runs = [await wait_for_status(run.pk, Run.FINAL) for run in submitted]
    assert [run.status for run in runs] == ["succeeded"] * 7
    assert [run.result for run in runs[5:]] == [[False, ANY], [False, "script:1: C stack overflow"]]
    assert runs[5].result[1].endswith("coroutine nesting too deep")
    after = await asubmit_run("return 6 * 7", nc=nc)
    after = await wait_for_status(after.pk, Run.FINAL, timeout=10)
    assert (after.status, after.result) == ("succeeded", 42)
    assert after.worker_id == runs[0].worker_id


async def test_runscript_in_process(process_env, script):
    path = script("print('hello ' .. args.name)\nreturn {ok = true, n = args.n}")
    code, out, err = await runscript(process_env, path, "--arg", "name=world", "--arg", "n:=3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "hello world"
    assert json.loads(lines[-1]) == {"ok": True, "n": 3}


@pytest.mark.parametrize(
    "source, exit_code, message",
    [
        ("print('a')\nerror('broken')", 1, "broken"),
        ("while true do end", 3, "limit"),
    ],
)
async def test_runscript_in_process_failures(process_env, script, source, exit_code, message):
    path = script(source, "bad.lua")
    code, out, err = await runscript(
        process_env, path, "--limit", "wall_seconds=1", "--limit", "instructions=1000000"
    )
    assert code == exit_code
    assert message in err and "bad.lua" in err


async def test_runscript_missing_file_is_one_clear_line(process_env, tmp_path):
    code, out, err = await runscript(process_env, str(tmp_path / "nope.lua"))
    assert code == 2
    assert err.strip().splitlines() == [f"CommandError: no such file: {tmp_path / 'nope.lua'}"]


async def test_runscript_remote(process_env, script, start_worker):
    await start_worker()
    path = script("for i = 1, 3 do print('n' .. i) end\nreturn args")
    code, out, err = await runscript(process_env, path, "--remote", "--arg", "k=v")
    assert code == 0, err
    assert out.splitlines() == ["n1", "n2", "n3", '{"k": "v"}']
    run = await Run.objects.aget(started_by="cli")
    assert (run.status, run.script_name, run.args) == ("succeeded", "script.lua", {"k": "v"})


async def test_runscript_remote_failure(process_env, script, start_worker):
    await start_worker()
    path = script("local x = nil\nreturn x.y", "nil.lua")
    code, out, err = await runscript(process_env, path, "--remote")
    assert code == 1
    assert "nil.lua:2" in err


@pytest.mark.parametrize("remote", [False, True])
async def test_runscript_ctrl_c_cancels_the_run(process_env, script, start_worker, remote):
    if remote:
        await start_worker()
    path = script("print('sleeping')\nsleep(30)\nprint('woke up')")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "manage.py"),
        "runscript",
        path,
        *(["--remote"] if remote else []),
        env=process_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"sleeping\n"
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 4, err
    assert b"woke up" not in out and b"run cancelled" in err
    if remote:
        assert (await Run.objects.aget(started_by="cli")).status == "cancelled"


async def test_runscript_remote_without_nats_says_so(process_env, script):
    from oktoscripts.launcher.embedded.ports import free_port

    env = {**process_env, "NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    code, out, err = await runscript(env, script("return 1"), "--remote")
    assert code == 2
    assert "cannot reach NATS" in err.strip().splitlines()[-1]
