"""Group commit: concurrent writers share one database round trip.

A caller that finds no write in progress writes its own item together with
whatever other threads queue meanwhile, in one call of ``write``; the others
wait for their own result. Each caller returns only once its item is written
(or with the error of the write that carried it), so nothing is acknowledged
before the database has it, and a caller reads its own write right after.

The embedded database spends most of a lone upsert on the request around it
(command parsing, a transaction, the reply): a few statements in one request
cost little more than one. A single thread gets no batching (it never waits
for anyone); threads calling at once, as the USP controller's registrations
do, get one request per group.

The same helper serves both kinds of callers: ``GroupCommit`` for threads
(the USP controller's registrations, a worker's device bindings), and
``LoopGroupCommit`` for coroutines on one asyncio loop (the ACS's Informs),
whose writes run off the loop. Both hand each caller its own item's result,
or the error of the write that carried it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("error", "finished", "item", "result", "wake")

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.finished = False
        self.wake = threading.Event()

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit(Generic[T, R]):
    """Writes items through ``write(items) -> results`` (one result per item,
    in order; an exception as the result of an item is raised to its caller
    alone), batching the items of concurrent ``submit`` calls."""

    def __init__(
        self, write: Callable[[list[T]], Sequence[R | BaseException]], max_batch: int = 500
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot[T, R]] = []
        self._busy = False

    @property
    def waiting(self) -> int:
        """Items submitted and not yet taken into a write."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: T) -> R:
        """Write ``item`` (with others queued at the same moment); its result."""
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            leading = not self._busy
            self._busy = True
        if not leading:
            slot.wake.wait()  # written by another caller, or handed the lead
        if not slot.finished:
            self._lead(slot)
        return slot.outcome()

    def _lead(self, own: _Slot[T, R]) -> None:
        """Write batches until ``own`` is written, then hand the lead to the
        oldest waiting caller, so no caller writes for others for long."""
        while not own.finished:
            with self._lock:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._run(batch)
        with self._lock:
            if self._queue:
                self._queue[0].wake.set()
            else:
                self._busy = False

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        try:
            outcomes = _outcomes(self._write([slot.item for slot in batch]), len(batch))
        except BaseException as exc:  # every caller of the batch gets the error
            outcomes = [exc] * len(batch)
        for slot, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.finished = True
            slot.wake.set()


def _outcomes(results: Sequence[Any], count: int) -> Sequence[Any]:
    """The write's results, one per item (an exception: that item alone failed)."""
    if len(results) != count:
        raise RuntimeError(f"{len(results)} results for {count} writes")
    return results


class LoopGroupCommit(Generic[T, R]):
    """Group commit for coroutines of one asyncio loop: ``await submit(item)``
    returns once the write that carried it is done. Items submitted in the same
    loop iteration, and while a write is in progress, go together in the next
    write. ``run(write, items)`` performs a write off the loop (e.g. on a
    thread pool) and returns its results."""

    def __init__(
        self,
        write: Callable[[list[T]], Sequence[R | BaseException]],
        run: Callable[[Callable, list[T]], Awaitable[Sequence[R | BaseException]]],
        max_batch: int = 500,
    ) -> None:
        self._write = write
        self._run = run
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def submit(self, item: T) -> R:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the items of this same loop iteration join
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    results = await self._run(self._write, [item for item, _ in batch])
                    outcomes = _outcomes(results, len(batch))
                except Exception as exc:  # noqa: BLE001 - each waiting caller gets it
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._task = None
