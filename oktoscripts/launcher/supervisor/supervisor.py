"""The supervisor: children started in stages (services, then the platform),
each stage waited on until ready, all stopped in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from oktoscripts.launcher.processes import Context, ProcessSpec
from oktoscripts.launcher.supervisor.child import Child
from oktoscripts.launcher.supervisor.output import LogOutput
from oktoscripts.launcher.supervisor.proctree import (
    become_subreaper,
    descendants,
    kill_leftovers,
    proc_stat,
    reap,
)

STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
GIVE_UP_AFTER_STARTS = 4  # a child that keeps dying while starting stops the start-up


class StartupError(Exception):
    """A child did not become ready; ``str()`` is the one-line reason."""


class Supervisor:
    def __init__(self, output: LogOutput, pids_file: Path | None = None) -> None:
        self.output = output
        self.pids_file = pids_file
        self.stages: list[list[Child]] = []
        self._reaper: asyncio.Task | None = None
        # Every descendant of a child seen so far (pid -> start time): what may be
        # left to stop or reap once its parent is gone.
        self._descendants: dict[int, int] = {}

    @property
    def children(self) -> list[Child]:
        return [child for stage in self.stages for child in stage]

    def begin(self) -> None:
        """Adopt orphaned descendants from now on, and keep them from turning into zombies."""
        become_subreaper()
        self._reaper = asyncio.create_task(self._reap_forever())

    async def start_stage(self, specs: Iterable[ProcessSpec], ctx: Context, timeout: float) -> None:
        """Start the enabled ``specs`` at once and return when all are ready."""
        stage = [
            Child(spec, ctx, self.output, on_spawn=self._spawned)
            for spec in specs
            if spec.enabled(ctx)
        ]
        self.stages.append(stage)
        for child in stage:
            self.output.widen(child.name)
        for child in stage:
            child.start()
        await asyncio.gather(*(self._until_ready(child, timeout) for child in stage))

    async def _until_ready(self, child: Child, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await child.ready():
                return
            if child.starts >= GIVE_UP_AFTER_STARTS and child.pid is None:
                raise StartupError(
                    f"{child.name} exited {child.starts} times while starting (see its lines above)"
                )
            if loop.time() >= deadline:
                raise StartupError(
                    f"{child.name} was not ready within {timeout:g} s (see its lines above)"
                )
            await asyncio.sleep(0.1)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop the stages in reverse order, then anything their children left."""
        self._remember_descendants()
        for stage in reversed(self.stages):
            await asyncio.gather(*(child.stop(grace) for child in stage))
        if self._reaper is not None:
            self._reaper.cancel()
        kill_leftovers(self._descendants)
        if self.pids_file is not None:
            self.pids_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL every child at once (when asked a second time to stop)."""
        for child in self.children:
            child.kill()

    def _spawned(self, child: Child) -> None:
        self._write_pids()

    def _write_pids(self) -> None:
        """Record the pids of up and its children (for tools and the test of ``up``)."""
        if self.pids_file is None:
            return
        pids = {"up": os.getpid(), "children": {c.name: c.pid for c in self.children if c.pid}}
        self.pids_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.pids_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(pids))
        temporary.replace(self.pids_file)

    def _remember_descendants(self) -> None:
        for child in self.children:
            if child.pid is not None:
                for stat in descendants(child.pid):
                    self._descendants[stat.pid] = stat.start

    async def _reap_forever(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(2.0)
                self._remember_descendants()
                reap(self._descendants)
                self._forget_the_gone()

    def _forget_the_gone(self) -> None:
        for pid in list(self._descendants):
            if proc_stat(pid) is None:
                del self._descendants[pid]
