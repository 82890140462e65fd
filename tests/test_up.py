"""``python manage.py up`` from an empty data directory, as a newcomer runs it:
everything embedded, a child killed and restarted, a clean stop that leaves
no process behind."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from oktoscripts.config import BASE_DIR
from oktoscripts.launcher.embedded.ports import free_port

pytestmark = pytest.mark.timeout(180)

SERVICE_SETTINGS = ("NATS_URL", "MONGO_URI", "DATABASE_URL", "MQTT_URL", "REDIS_URL")


# --- the process tree, read from /proc (independently of the supervisor's code)


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid, pgid = raw[raw.rindex(")") + 2 :].split()[:3]
    return state, int(ppid), int(pgid)


def live_processes() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, pgid) of every process that runs (zombies are dead)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := stat(int(entry))) and info[0] != "Z":
            found[int(entry)] = (info[1], info[2])
    return found


def tree(root: int) -> tuple[set[int], set[int]]:
    """The pids below ``root`` and their process groups."""
    processes = live_processes()
    pids, todo = set(), [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, _) in processes.items():
            if ppid == parent and pid not in pids:
                pids.add(pid)
                todo.append(pid)
    return pids, {processes[pid][1] for pid in pids if pid in processes}


def survivors(pids: set[int], groups: set[int]) -> dict[int, tuple[int, int]]:
    return {pid: info for pid, info in live_processes().items() if pid in pids or info[1] in groups}


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- talking to the platform


def get(url: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


class Up:
    """A ``manage.py up`` subprocess with its output in a file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {k: v for k, v in os.environ.items() if k not in SERVICE_SETTINGS}
        env.update(
            OKTOSCRIPTS_DATA_DIR=str(data_dir),
            OKTOSCRIPTS_WEB_PORT=str(self.port),
            # Fixed ports by default: free ones, so this `up` runs beside any other.
            OKTOSCRIPTS_ACS_PORT=str(free_port()),
            OKTOSCRIPTS_ACS_TLS_PORT=str(free_port()),
            OKTOSCRIPTS_USP_WS_PORT=str(free_port()),
        )
        env.pop("OKTOSCRIPTS_ADMIN_PASSWORD", None)
        self.env = env
        self.log = data_dir.parent / "up.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(BASE_DIR / "manage.py"), "up"],
                env=env,
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def healthy(self) -> bool:
        assert self.process.poll() is None, self.output()
        return get(self.url + "healthz")[0] == 200

    def wait_ready(self) -> None:
        wait_until(lambda: "is ready: open" in self.output(), 60, "up to say it is ready")
        assert self.healthy()

    def children(self) -> dict[str, int]:
        return json.loads((self.data_dir / "run" / "pids.json").read_text())["children"]

    def stop(self) -> None:
        """After a failed test: whatever state it is in, leave no server running."""
        pids_file = self.data_dir / "run" / "pids.json"
        children = json.loads(pids_file.read_text())["children"] if pids_file.exists() else {}
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def up(data_dir):
    platform = Up(data_dir)
    yield platform
    platform.stop()


def nats_url_seen_by_a_command(env: dict[str, str]) -> str:
    """settings.NATS_URL in a fresh ``manage.py shell`` with ``env`` (no NATS_URL in it)."""
    result = subprocess.run(
        [
            sys.executable,
            str(BASE_DIR / "manage.py"),
            "shell",
            "-c",
            "from django.conf import settings; print('NATS_URL=' + settings.NATS_URL)",
        ],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return re.search(r"^NATS_URL=(.*)$", result.stdout, re.M).group(1)


def log_in(url: str, password: str) -> tuple[int, str]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, page = get(url + "login/", opener)
    assert status == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": "admin", "password": password, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(url + "login/", data=form, headers={"Referer": url})
    with opener.open(request, timeout=10) as response:
        return response.status, response.url


def test_up_runs_restarts_a_killed_child_and_stops_clean(up):
    up.wait_ready()
    out = up.output()

    # The printed URL serves the login page, and the printed password logs in.
    assert f"open {up.url}" in out
    status, page = get(up.url + "login/")
    assert status == 200 and 'name="password"' in page
    password = re.search(r"log in as admin, password (\S+)", out).group(1)
    status, landed = log_in(up.url, password)
    assert status == 200 and not landed.endswith("/login/")

    # Every child line carries its name; the embedded services are published.
    assert re.search(r"^\S+ nats +\| ", out, re.M) and re.search(r"^\S+ web +\| ", out, re.M)
    endpoints = json.loads((up.data_dir / "run" / "endpoints.json").read_text())
    assert set(endpoints) == {"NATS_URL", "MONGO_URI", "MQTT_URL"}
    # ... and a command started by hand beside it finds them with no configuration.
    assert nats_url_seen_by_a_command(up.env) == endpoints["NATS_URL"]

    # A second `up` on the same data directory is refused in one line.
    second = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "up"],
        env={**up.env, "OKTOSCRIPTS_WEB_PORT": str(free_port())},
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0
    assert second.stderr.strip().count("\n") == 0 and "OKTOSCRIPTS_DATA_DIR" in second.stderr

    # kill -9 the nats-server: it comes back (a new pid) and /healthz is green again.
    nats_pid = up.children()["nats"]
    assert stat(nats_pid)[1] == up.process.pid
    os.kill(nats_pid, signal.SIGKILL)
    new_pid = wait_until(
        lambda: (pid := up.children().get("nats")) != nats_pid and stat(pid or 0) and pid,
        30,
        "nats-server to be restarted",
    )
    assert stat(new_pid)[1] == up.process.pid
    wait_until(up.healthy, 30, "/healthz to be 200 again")
    assert re.search(r"nats +\| was killed by SIGKILL; restarting in ", up.output())

    # SIGTERM: everything stops, and nothing of the tree is left.
    pids, groups = tree(up.process.pid)
    assert {up.children()["nats"], up.children()["mongo"], up.children()["web"]} <= pids
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(timeout=60) == 0, up.output()
    assert survivors(pids, groups) == {}
    assert not (up.data_dir / "run" / "endpoints.json").exists()


def test_children_die_with_a_killed_up(up):
    up.wait_ready()
    pids, groups = tree(up.process.pid)
    assert len(pids) >= 3
    up.process.send_signal(signal.SIGKILL)
    up.process.wait()
    wait_until(lambda: not survivors(pids, groups), 30, "the children of a killed up to exit")
    # The killed `up` could not remove its endpoints file; commands ignore it anyway.
    assert (up.data_dir / "run" / "endpoints.json").exists()
    assert nats_url_seen_by_a_command(up.env) == ""
