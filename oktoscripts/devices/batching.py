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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

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
            results = self._write([slot.item for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} writes")
        except BaseException as exc:  # every caller of the batch gets the error
            for slot in batch:
                slot.error = exc
        else:
            for slot, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):  # this item alone failed
                    slot.error = result
                else:
                    slot.result = result
        for slot in batch:
            slot.finished = True
            slot.wake.set()
