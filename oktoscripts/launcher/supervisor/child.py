"""One supervised child process: started from its ProcessSpec, its output
prefixed with its name, restarted with exponential back-off when it exits on
its own, and stopped together with everything in its process group."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from subprocess import DEVNULL
from typing import BinaryIO

from oktoscripts import config
from oktoscripts.config import BASE_DIR
from oktoscripts.launcher.processes import Context, ProcessSpec
from oktoscripts.launcher.supervisor.output import LineSplitter, LogOutput
from oktoscripts.launcher.supervisor.proctree import all_processes, die_with_parent, signal_group

BACKOFF_FIRST = 0.5  # seconds before the first restart
BACKOFF_MAX = 30.0
STABLE_AFTER = 20.0  # a child up this long counts as healthy again: back-off starts over
OUTPUT_DRAIN = 1.0  # how long to wait for output still in the pipe after the child exited


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "could not be started"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def group_alive(pgid: int) -> bool:
    """True while any process of the group is still running (zombies excluded)."""
    return any(s.pgid == pgid and s.state != "Z" for s in all_processes())


class Child:
    """A named OS process kept running until ``stop()``."""

    def __init__(
        self,
        spec: ProcessSpec,
        ctx: Context,
        output: LogOutput,
        on_spawn: Callable[[Child], None] = lambda child: None,
    ) -> None:
        self.spec = spec
        self.ctx = ctx
        self.output = output
        self.on_spawn = on_spawn
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0  # attempts to start it so far (1 + restarts)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        """The pid of the current process (also its process group id)."""
        if self.process is None or self.process.returncode is not None:
            return None
        return self.process.pid

    async def ready(self) -> bool:
        """Running, and its readiness check (if it has one) passes."""
        if self.pid is None:
            return False
        return self.spec.ready is None or await self.spec.ready(self.ctx)

    def say(self, text: str) -> None:
        self.output.line(self.name, text)

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"supervise-{self.name}")

    def environment(self) -> dict[str, str]:
        return {
            **config.environment(),
            **self.ctx.endpoints,
            "OKTOSCRIPTS_DATA_DIR": str(self.ctx.data_dir),
            "PYTHONUNBUFFERED": "1",  # lines reach the log as they are written
            **self.spec.env,
        }

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            started = loop.time()
            try:
                returncode = await self._run_once()
            except Exception as exc:  # a bug in a spec must not end its supervision
                self.say(f"cannot start: {type(exc).__name__}: {exc}")
                returncode = None
            if self._stopping.is_set():
                break
            if loop.time() - started >= STABLE_AFTER:
                delay = BACKOFF_FIRST
            self.say(f"{describe_exit(returncode)}; restarting in {delay:g} s")
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, BACKOFF_MAX)

    async def _run_once(self) -> int | None:
        """Start the process, pass its output on until it exits; its exit status."""
        self.starts += 1
        # Our own pipe rather than asyncio's: asyncio's wait() also waits for the
        # pipe to close, which a grandchild that inherited it may never do.
        read_end, write_end = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.spec.argv(self.ctx),
                stdin=DEVNULL,
                stdout=write_end,
                stderr=write_end,
                env=self.environment(),
                cwd=BASE_DIR,
                # Its own session and process group: Ctrl-C in the terminal reaches
                # only the supervisor, and a signal to the group reaches its children.
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        except OSError as exc:
            os.close(read_end)
            self.say(f"cannot start: {exc}")
            return None
        finally:
            os.close(write_end)
        self.on_spawn(self)
        if self._stopping.is_set():  # stop() came while it was being started
            signal_group(self.process.pid, signal.SIGTERM)
        pipe = open(read_end, "rb", buffering=0)  # noqa: SIM115 - closed below
        pump = asyncio.create_task(self._pump(pipe))
        returncode = await self.process.wait()
        if not self._stopping.is_set():
            # It died on its own: what it left in its group is unsupervised, end it.
            signal_group(self.process.pid, signal.SIGKILL)
        # A grandchild may hold the pipe open for ever: wait a moment, no more.
        _, pending = await asyncio.wait({pump}, timeout=OUTPUT_DRAIN)
        for task in pending:
            task.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        pipe.close()
        return returncode

    async def _pump(self, pipe: BinaryIO) -> None:
        """Pass the lines arriving on ``pipe`` to the log until it closes."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        lines = LineSplitter()
        keep = self.spec.log_filter() if self.spec.log_filter else (lambda line: line)

        def say_kept(texts: list[str]) -> None:
            for text in texts:
                kept = keep(text)
                if kept is not None:
                    self.say(kept)

        try:
            while chunk := await reader.read(65536):
                say_kept(lines.feed(chunk))
        finally:
            say_kept(lines.flush())
            transport.close()

    async def stop(self, grace: float) -> None:
        """SIGTERM to the process group, SIGKILL after ``grace`` seconds; returns
        once nothing of the group runs any more."""
        self._stopping.set()
        self._signal_running(signal.SIGTERM)
        if not await self._ended(grace):
            self.say(f"still running {grace:g} s after SIGTERM: sending SIGKILL")
            self.kill()
            await self._ended(5.0)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def kill(self) -> None:
        """SIGKILL the process group now (a second Ctrl-C)."""
        self._stopping.set()
        if self.process is not None:
            signal_group(self.process.pid, signal.SIGKILL)

    def _signal_running(self, sig: int) -> None:
        # Only a live leader: the group of one that died on its own was killed then.
        if self.process is not None and self.process.returncode is None:
            signal_group(self.process.pid, sig)

    async def _ended(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            supervising = self._task is not None and not self._task.done()
            if not supervising and (self.process is None or not group_alive(self.process.pid)):
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
