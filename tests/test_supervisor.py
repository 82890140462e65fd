"""The supervisor with small real child processes (sh, sleep): prefixed output,
restarts with back-off, and a stop that leaves nothing behind."""

from __future__ import annotations

import asyncio
import ctypes
import io
import json
import os
import re
from pathlib import Path

import pytest

from oktoscripts.launcher.processes import Context, ProcessSpec
from oktoscripts.launcher.supervisor import StartupError, Supervisor
from oktoscripts.launcher.supervisor.output import LineSplitter, LogOutput

PR_SET_CHILD_SUBREAPER = 36


def shell(script: str, name: str = "job", **env: str) -> ProcessSpec:
    return ProcessSpec(name, lambda ctx: ["sh", "-c", script], env=env)


@pytest.fixture
def ctx(tmp_path) -> Context:
    return Context(tmp_path, "127.0.0.1", 0, {"NATS_URL": "nats://127.0.0.1:1"})


@pytest.fixture
async def supervised():
    """A supervisor writing to a string; stopped (and this process no longer a
    subreaper) at the end whatever happened."""
    stream = io.StringIO()
    supervisor = Supervisor(LogOutput(["job"], stream))
    supervisor.begin()
    yield supervisor, stream
    await supervisor.stop(grace=2)
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


async def until(condition, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def test_every_line_of_stdout_and_stderr_carries_the_name(supervised, ctx):
    supervisor, stream = supervised
    spec = shell('echo "out $NATS_URL $PYTHONUNBUFFERED $EXTRA"; echo err >&2; sleep 60', EXTRA="x")
    await supervisor.start_stage([spec], ctx, timeout=20)
    await until(lambda: "err" in stream.getvalue())
    lines = stream.getvalue().splitlines()
    assert any(re.fullmatch(r"\S+ job \| out nats://127.0.0.1:1 1 x", line) for line in lines)
    assert any(re.fullmatch(r"\S+ job \| err", line) for line in lines)


async def test_a_child_that_exits_is_restarted_with_growing_delays(supervised, ctx):
    supervisor, stream = supervised
    spec = shell("echo started; sleep 0.2; exit 3")
    await supervisor.start_stage([spec], ctx, timeout=20)
    await until(lambda: stream.getvalue().count("started") >= 3)
    delays = re.findall(r"exited with status 3; restarting in (\S+) s", stream.getvalue())
    assert [float(d) for d in delays[:2]] == [0.5, 1.0]


async def test_a_child_that_keeps_dying_at_start_fails_the_start(supervised, ctx):
    supervisor, stream = supervised

    async def never_ready(ctx) -> bool:
        return False

    spec = ProcessSpec("job", lambda ctx: ["sh", "-c", "exit 1"], ready=never_ready)
    with pytest.raises(StartupError, match="job exited 4 times while starting"):
        await supervisor.start_stage([spec], ctx, timeout=60)


async def test_stop_ends_the_group_and_escaped_grandchildren(supervised, ctx):
    supervisor, stream = supervised
    # One grandchild stays in the child's group; one escapes into its own session.
    spec = shell("sleep 300 & echo group $!; setsid sleep 300 & echo escaped $!; wait")
    await supervisor.start_stage([spec], ctx, timeout=20)
    await until(lambda: "escaped" in stream.getvalue())
    in_group = int(re.search(r"group (\d+)", stream.getvalue()).group(1))
    escaped = int(re.search(r"escaped (\d+)", stream.getvalue()).group(1))
    child = supervisor.children[0].pid
    assert alive(in_group) and alive(escaped)
    await supervisor.stop(grace=5)
    assert not alive(child) and not alive(in_group) and not alive(escaped)


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(supervised, ctx):
    supervisor, stream = supervised
    spec = shell("trap '' TERM; echo ready; sleep 300 & wait")
    await supervisor.start_stage([spec], ctx, timeout=20)
    await until(lambda: "ready" in stream.getvalue())
    pid = supervisor.children[0].pid
    await supervisor.stop(grace=0.5)
    assert not alive(pid)
    assert "sending SIGKILL" in stream.getvalue()


async def test_pids_file_lists_the_running_children(tmp_path, ctx):
    pids_file = tmp_path / "run" / "pids.json"
    supervisor = Supervisor(LogOutput(["job"], io.StringIO()), pids_file=pids_file)
    await supervisor.start_stage([shell("sleep 60")], ctx, timeout=20)
    listed = json.loads(pids_file.read_text())
    assert listed["up"] == os.getpid()
    assert listed["children"]["job"] == supervisor.children[0].pid
    await supervisor.stop(grace=2)
    assert not pids_file.exists()


def test_line_splitter_keeps_partial_lines_and_cuts_runaway_ones():
    lines = LineSplitter()
    assert lines.feed(b"a\nb") == ["a"]
    assert lines.feed(b"c\r\n\xff\n") == ["bc", "\ufffd"]
    assert lines.feed(b"x" * (LineSplitter.MAX_LINE + 10)) == ["x" * LineSplitter.MAX_LINE]
    assert lines.flush() == ["x" * 10]
