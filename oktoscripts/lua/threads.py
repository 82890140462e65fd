"""The thread pool that Lua code runs on, able to give up on a stuck thread.

Lua runs off the asyncio loop so that a CPU-heavy run does not hold up the I/O
of the others (lupa releases the GIL while Lua runs, so runtimes of different
runs execute in parallel). No hook can interrupt one long C call (a
backtracking string.find) or LuaJIT's compiled code, so when a run overruns
its wall-clock limit and its thread does not come back, the driver *abandons*
that thread: the run ends, its runtime is dropped, and the thread finishes
the call whenever it does and then exits; its result is thrown away.

An abandoned thread is replaced so the pool keeps its size, but only while
fewer than `max_stuck` abandoned threads are still alive; past that the pool
shrinks instead of growing, so stuck threads cannot pile up without bound.
`stuck` tells the host how many there are (a worker can report it and
restart itself when it stays high).
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class _Job:
    __slots__ = ("future", "fn", "args", "thread")

    def __init__(self, future: concurrent.futures.Future, fn: Callable, args: tuple) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.thread: threading.Thread | None = None


class LuaThreadPool(concurrent.futures.Executor):
    """A fixed-size pool of daemon threads with `abandon()` for stuck jobs."""

    def __init__(self, workers: int | None = None, max_stuck: int | None = None) -> None:
        self.size = workers or max(2, os.cpu_count() or 2)
        self.max_stuck = self.size if max_stuck is None else max_stuck
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._abandoned: set[threading.Thread] = set()
        self._jobs: dict[concurrent.futures.Future, _Job] = {}
        self._shutdown = False
        for _ in range(self.size):
            self._spawn()

    @property
    def stuck(self) -> int:
        """Abandoned threads still busy with the call they were abandoned in."""
        with self._lock:
            return len(self._abandoned)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        if kwargs:
            raise TypeError("LuaThreadPool.submit takes positional arguments only")
        if self._shutdown:
            raise RuntimeError("LuaThreadPool is shut down")
        future: concurrent.futures.Future = concurrent.futures.Future()
        job = _Job(future, fn, args)
        with self._lock:
            self._jobs[future] = job
        self._queue.put(job)
        return future

    def abandon(self, future: concurrent.futures.Future) -> None:
        """Give up on the job of `future`: its thread leaves the pool when the
        job ends, and a replacement starts now if the stuck cap allows."""
        with self._lock:
            job = self._jobs.get(future)
            if job is None or job.thread is None:
                future.cancel()  # not started yet: it simply never runs
                return
            if job.thread in self._abandoned:
                return
            self._abandoned.add(job.thread)
            self._threads.discard(job.thread)
            replace = len(self._abandoned) <= self.max_stuck and not self._shutdown
        if replace:
            self._spawn()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(_STOP)
        if wait:
            for thread in threads:
                thread.join()

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._work, name="lua", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            assert isinstance(job, _Job)
            with self._lock:
                job.thread = me
            if not job.future.set_running_or_notify_cancel():
                self._forget(job)
                continue
            try:
                result = job.fn(*job.args)
            except BaseException as exc:  # handed to the awaiting side
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
            self._forget(job)
            with self._lock:
                if me in self._abandoned:
                    self._abandoned.discard(me)
                    if self._threads and len(self._threads) >= self.size:
                        return  # was replaced: leave
                    self._threads.add(me)  # was not replaced (cap): rejoin

    def _forget(self, job: _Job) -> None:
        with self._lock:
            self._jobs.pop(job.future, None)


_default_pool: LuaThreadPool | None = None
_default_lock = threading.Lock()


def default_pool() -> LuaThreadPool:
    """The process-wide pool used by runs that are given no executor."""
    global _default_pool
    with _default_lock:
        if _default_pool is None:
            _default_pool = LuaThreadPool()
        return _default_pool
