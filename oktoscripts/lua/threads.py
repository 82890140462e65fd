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

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

_STOP = object()

# The C stack of a Lua thread. The engine refuses C-level nesting past 200
# levels (sandbox.lua, "C stack"), each at most about 10 KB (string.gsub's
# buffer); the platform default is 8 MiB, or only 2 MiB when the stack
# rlimit is unlimited. Set explicitly, with room to spare (only the pages
# used are ever backed by memory).
THREAD_STACK_BYTES = 16 << 20
_stack_size_lock = threading.Lock()  # threading.stack_size is process-wide

# Per pool thread: what to run once the current job's result is delivered.
_local = threading.local()


def after_job(fn: Callable[[], Any]) -> None:
    """Run `fn` on this pool thread right after the current job's result has
    been handed over (cleanup that the awaiting side need not wait for), or
    at once on any other thread."""
    deferred = getattr(_local, "deferred", None)
    if deferred is None:
        fn()
    else:
        deferred.append(fn)


class LoopInbox:
    """Results of Lua jobs on their way back to one asyncio loop.

    A finished job puts its result here from its thread; the loop is woken
    once for everything put meanwhile (not once per result, as
    call_soon_threadsafe per job would), which matters when thousands of
    sleeping runs wake up together.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[tuple[asyncio.Future, Any, BaseException | None]] = []

    def put(self, future: asyncio.Future, result: Any, exc: BaseException | None) -> None:
        """(Any thread.) Settle `future` on the loop with `result` or `exc`."""
        with self._lock:
            self._items.append((future, result, exc))
            if len(self._items) > 1:
                return  # a drain is already on its way
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for these any more

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        for future, result, exc in items:
            if future.done():  # its waiter was cancelled meanwhile
                continue
            if exc is None:
                future.set_result(result)
            elif isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopInbox] = (
    weakref.WeakKeyDictionary()
)
_inboxes_lock = threading.Lock()


def inbox_for(loop: asyncio.AbstractEventLoop) -> LoopInbox:
    """The inbox of `loop` (one per loop, shared by its runs)."""
    with _inboxes_lock:
        inbox = _inboxes.get(loop)
        if inbox is None:
            inbox = _inboxes[loop] = LoopInbox(loop)
        return inbox


class _Job:
    """A call to make on a pool thread. Its result goes either to a
    concurrent Future (submit) or to an asyncio future through a LoopInbox
    (post)."""

    __slots__ = ("fn", "args", "thread", "future", "inbox", "waiter", "cancelled", "finished")
    # `finished`: the thread is done with it, the cleanup after it included
    # (closing the run's runtime): a thread stuck there is stuck like one
    # stuck in the job itself, and can be abandoned.

    def __init__(
        self,
        fn: Callable,
        args: tuple,
        future: concurrent.futures.Future | None = None,
        inbox: LoopInbox | None = None,
        waiter: asyncio.Future | None = None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.future = future
        self.inbox = inbox
        self.waiter = waiter
        self.thread: threading.Thread | None = None
        self.cancelled = False
        self.finished = False

    def start(self) -> bool:
        """False if the job was cancelled before it started."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        return not self.cancelled

    def deliver(self, result: Any, exc: BaseException | None) -> None:
        if self.future is not None:
            if exc is None:
                self.future.set_result(result)
            else:
                self.future.set_exception(exc)
        elif self.inbox is not None:
            self.inbox.put(self.waiter, result, exc)


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
        self._check_open()
        future: concurrent.futures.Future = concurrent.futures.Future()
        job = _Job(fn, args, future=future)
        with self._lock:
            self._jobs[future] = job
        self._queue.put(job)
        return future

    def post(self, fn: Callable, args: tuple, inbox: LoopInbox, waiter: asyncio.Future) -> _Job:
        """Run fn(*args) on a pool thread and settle `waiter` through `inbox`:
        the light path of the driver (no concurrent Future, no wake-up of
        the loop per job). The returned job can be given to abandon()."""
        self._check_open()
        job = _Job(fn, args, inbox=inbox, waiter=waiter)
        self._queue.put(job)
        return job

    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("LuaThreadPool is shut down")

    def abandon(self, handle: concurrent.futures.Future | _Job) -> None:
        """Give up on a job (its Future from submit, or the job from post):
        its thread leaves the pool when the job ends, and a replacement
        starts now if the stuck cap allows."""
        with self._lock:
            job = handle if isinstance(handle, _Job) else self._jobs.get(handle)
            if job is None or job.thread is None:
                # Not started yet: it simply never runs.
                if job is not None:
                    job.cancelled = True
                if isinstance(handle, concurrent.futures.Future):
                    handle.cancel()
                return
            if job.finished or job.thread in self._abandoned:
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
        with _stack_size_lock:
            previous = threading.stack_size(THREAD_STACK_BYTES)
            try:
                thread.start()
            finally:
                threading.stack_size(previous)

    def _work(self) -> None:
        me = threading.current_thread()
        _local.deferred = deferred = []
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            assert isinstance(job, _Job)
            with self._lock:
                job.thread = me
            if not job.start():
                job.finished = True
                self._forget(job)
                continue
            try:
                result = job.fn(*job.args)
            except BaseException as exc:  # handed to the awaiting side
                job.deliver(None, exc)
            else:
                job.deliver(result, None)
            job.fn = job.args = None  # a run may keep the job: not what it ran
            while deferred:
                try:
                    deferred.pop(0)()
                except BaseException:  # noqa: BLE001 - cleanup only: the thread goes on
                    logging.getLogger(__name__).exception("cleanup after a Lua job failed")
            job.finished = True
            self._forget(job)
            with self._lock:
                if me in self._abandoned:
                    self._abandoned.discard(me)
                    if self._threads and len(self._threads) >= self.size:
                        return  # was replaced: leave
                    self._threads.add(me)  # was not replaced (cap): rejoin

    def _forget(self, job: _Job) -> None:
        if job.future is not None:
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
