"""Platform processes (``manage.py worker``, ``manage.py scheduler``) started by tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ManagePyProcess:
    """``manage.py COMMAND ARGS`` in its own session, its output in ``log``."""

    def __init__(self, command: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.command = command
        self.log = log
        # The line each of these commands prints once it is serving.
        self._ready = re.compile(rf"^{command} \S+ ready$", re.MULTILINE)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), command, *args],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.search(self.log.read_text(errors="replace")):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.command} exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.command} not ready in {timeout}s: {self.log.read_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group and wait for the process."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not stopped 15 s later."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)


@contextmanager
def started_processes(
    make: Callable[..., ManagePyProcess],
) -> Iterator[Callable[..., ManagePyProcess]]:
    """A fixture's ``start(...)``: each process made is ready when it returns
    and stopped when the fixture ends."""
    procs: list[ManagePyProcess] = []

    def start(*args: object) -> ManagePyProcess:
        proc = make(len(procs), *args)
        procs.append(proc)
        proc.wait_ready()
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            proc.stop()
