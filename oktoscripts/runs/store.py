"""Every database write of a worker, on one thread, grouped into few transactions.

A worker running hundreds of runs a second cannot afford one transaction per
output line, or even per run: each commit is a disk sync, and each ORM query
costs Python time that the event loop and Lua threads need. Writes are queued
from the event loop and applied by one database thread; while one
transaction commits, the next writes pile up and go together in the next one
(group commit). Within a transaction, the claims of all runs taken meanwhile
are two statements, their outcomes one SELECT and one executemany, and their
output lines one bulk INSERT. The event loop never touches the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
    transaction,
)
from django.db.models.constants import OnConflict
from django.utils import timezone

from oktoscripts.runs.models import Run, RunOutputLine

log = logging.getLogger(__name__)

# A failed transaction (database restarting, locked) is retried this often
# before the writes in it are given up.
RETRIES = 5
RETRY_PAUSE_S = 1.0
# Check the connection is still usable at most this often (Postgres restarts).
CONNECTION_CHECK_S = 30.0
# Ids per "IN (...)" list: far below every database's parameter limit.
CHUNK = 500


# An output line waiting to be stored: (run id, seq, stream, text, level, epoch time).
OutputRow = tuple[str, int, str, str, str | None, float]


@dataclass(frozen=True)
class ClaimedRun:
    """What a worker needs from the Run row to execute it."""

    id: str
    script_name: str
    code: str
    args: dict
    runtime: str
    limits: dict
    listener_key: str
    # Who the run acts for (oktoscripts/runs/principal.py).
    user_id: int | None = None
    started_by: str = ""
    bounded_by_author: bool = False
    script_version_id: int | None = None
    replay_key: str = ""
    mode: str = "run"
    debug: bool = False
    created: datetime | None = None  # when it was queued: the queue wait ends at the claim
    replay_of: str | None = None


@dataclass(frozen=True)
class Outcome:
    run_id: str
    status: str
    result: Any
    error: dict | None
    metrics: dict | None


@dataclass
class _Write:
    kind: str  # "claim" (value: run id) | "finish" (value: Outcome) | "call" (value: callable)
    value: Any
    future: asyncio.Future | None


def _epoch_to_datetime(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


def _chunks(items: list) -> Iterator[list]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class RunStore:
    """The database side of one worker (``worker_id`` goes on the runs it claims)."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="runs-db")
        self._writes: list[_Write] = []
        self._lines: list[OutputRow] = []
        self._flusher: asyncio.Task | None = None
        self._last_connection_check = 0.0

    # -- called on the event loop --------------------------------------------

    async def claim(self, run_id: str) -> ClaimedRun | None:
        """Mark a queued run as running on this worker. None when the run is
        not queued any more (taken before, cancelled, deleted): such a request
        must be dropped, never run twice."""
        return await self._write("claim", run_id)

    def add_output(
        self, run_id: str, seq: int, stream: str, text: str, level: str | None, at: float
    ) -> None:
        """Queue an output line; it is stored with the next transaction. Kept as
        a plain tuple: building a model instance per line costs more than the
        insert itself."""
        self._lines.append((run_id, seq, stream, text, level, at))
        self._schedule()

    def set_status_soon(self, run_id: str, status: str) -> None:
        """Queue a status change of a held run without waiting for it."""

        def apply() -> bool:
            return bool(self._mine(run_id).update(status=status))

        self._writes.append(_Write("call", apply, None))
        self._schedule()

    async def finish(
        self, run_id: str, status: str, result: Any, error: dict | None, metrics: dict | None
    ) -> bool:
        """Store the outcome (after every output line queued before). False when
        the run was no longer this worker's (declared lost meanwhile)."""
        return await self._write("finish", Outcome(run_id, status, result, error, metrics))

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run a read or write of the caller's on the database thread, in the next transaction."""
        return await self._write("call", fn)

    async def close(self) -> None:
        await self.flush()
        await asyncio.get_running_loop().run_in_executor(self._thread, connections.close_all)
        self._thread.shutdown(wait=True)

    async def flush(self) -> None:
        if self._writes or self._lines:
            await self._write("call", lambda: None)
        if self._flusher:
            await asyncio.shield(self._flusher)

    # -- group commit -----------------------------------------------------------

    async def _write(self, kind: str, value: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._writes.append(_Write(kind, value, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_all())

    async def _flush_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self._writes or self._lines:
            lines, self._lines = self._lines, []
            writes, self._writes = self._writes, []
            outcomes = await self._apply_with_retries(loop, lines, writes)
            for write, (ok, value) in zip(writes, outcomes, strict=True):
                if write.future is None or write.future.done():
                    continue
                if ok:
                    write.future.set_result(value)
                else:
                    write.future.set_exception(value)

    async def _apply_with_retries(
        self, loop: asyncio.AbstractEventLoop, lines: list[OutputRow], writes: list[_Write]
    ) -> list[tuple[bool, Any]]:
        for attempt in range(1, RETRIES + 1):
            try:
                return await loop.run_in_executor(self._thread, self._apply, lines, writes)
            except Exception as exc:  # noqa: BLE001 - the database is down or locked: retry
                log.warning("storing runs failed (attempt %d of %d): %s", attempt, RETRIES, exc)
                self._last_connection_check = 0.0
                if attempt == RETRIES:
                    log.error(
                        "gave up storing %d output lines and %d writes", len(lines), len(writes)
                    )
                    return [(False, exc)] * len(writes)
                await asyncio.sleep(RETRY_PAUSE_S)
        raise AssertionError("unreachable")

    # -- the database thread --------------------------------------------------

    def _apply(self, lines: list[OutputRow], writes: list[_Write]) -> list[tuple[bool, Any]]:
        now = time.monotonic()
        if now - self._last_connection_check > CONNECTION_CHECK_S:
            close_old_connections()
            self._last_connection_check = now
        try:
            with transaction.atomic():
                self._insert_lines(lines)
                return self._apply_writes(writes)
        except (OperationalError, InterfaceError):
            raise  # the database is unreachable or locked: the caller retries the lot
        except Exception:  # noqa: BLE001 - one bad write: apply them one by one below
            log.exception("a grouped write failed; applying each write alone")
        with transaction.atomic():
            self._insert_lines(lines)
        return [self._apply_alone(write) for write in writes]

    def _apply_writes(self, writes: list[_Write]) -> list[tuple[bool, Any]]:
        claims = self._claim_all([w.value for w in writes if w.kind == "claim"])
        finished = self._finish_all([w.value for w in writes if w.kind == "finish"])
        results = []
        for write in writes:
            if write.kind == "claim":
                results.append((True, claims.get(write.value)))
            elif write.kind == "finish":
                results.append((True, write.value.run_id in finished))
            else:
                results.append((True, write.value()))
        return results

    def _apply_alone(self, write: _Write) -> tuple[bool, Any]:
        try:
            with transaction.atomic():
                return self._apply_writes([write])[0]
        except Exception as exc:  # noqa: BLE001 - reported to that write's caller
            return (False, exc)

    @staticmethod
    def _insert_lines(lines: list[OutputRow]) -> None:
        """One executemany INSERT; a retried transaction that did commit
        inserts nothing twice (conflicts on (run, seq) are ignored)."""
        if not lines:
            return
        ops, field = connection.ops, RunOutputLine._meta.get_field
        columns = ("run_id", "seq", "stream", "text", "level", "time")
        conflict = ops.on_conflict_suffix_sql(
            [field(name) for name in columns], OnConflict.IGNORE, None, None
        )
        sql = (
            f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} "
            f"{ops.quote_name(RunOutputLine._meta.db_table)} "
            f"({', '.join(ops.quote_name(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}) {conflict}"
        )
        run_ids: dict[str, Any] = {}  # each run's id adapted once
        to_db_time = field("time").get_db_prep_save
        rows = []
        for run_id, seq, stream, text, level, at in lines:
            db_run_id = run_ids.get(run_id)
            if db_run_id is None:
                db_run_id = run_ids[run_id] = field("run").get_db_prep_save(run_id, connection)
            time_value = to_db_time(_epoch_to_datetime(at), connection)
            rows.append((db_run_id, seq, stream, text, level, time_value))
        with connection.cursor() as cursor:
            for chunk in _chunks(rows):
                cursor.executemany(sql, chunk)

    def _mine(self, run_id: str):  # noqa: ANN202 - a QuerySet
        return Run.objects.filter(pk=run_id, worker_id=self.worker_id, status__in=Run.ACTIVE)

    def _claim_all(self, run_ids: list[str]) -> dict[str, ClaimedRun]:
        """Claim the runs among ``run_ids`` that are still queued. The rows are
        locked (PostgreSQL) or the database is (SQLite, BEGIN IMMEDIATE) until
        commit, so two workers never claim the same run."""
        claimed: dict[str, ClaimedRun] = {}
        for chunk in _chunks(run_ids):
            rows = (
                Run.objects.select_for_update()
                .filter(pk__in=chunk, status=Run.Status.QUEUED)
                .values_list(
                    "id",
                    "script_name",
                    "code",
                    "args",
                    "runtime",
                    "limits",
                    "listener_key",
                    "user_id",
                    "started_by",
                    "bounded_by_author",
                    "script_version_id",
                    "replay_key",
                    "mode",
                    "debug",
                    "created",
                    "replay_of_id",
                )
            )
            for run_id, *fields in rows:
                claimed[str(run_id)] = ClaimedRun(str(run_id), *fields)
        for chunk in _chunks(list(claimed)):
            Run.objects.filter(pk__in=chunk, status=Run.Status.QUEUED).update(
                status=Run.Status.RUNNING, started=timezone.now(), worker_id=self.worker_id
            )
        return claimed

    def _finish_all(self, outcomes: list[Outcome]) -> set[str]:
        """Store outcomes of runs this worker still holds; returns their ids."""
        mine: set[str] = set()
        for chunk in _chunks([o.run_id for o in outcomes]):
            mine.update(str(run_id) for run_id in self._held_rows(chunk))
        rows = [self._outcome_row(o) for o in outcomes if o.run_id in mine]
        if rows:
            quote = connection.ops.quote_name
            sql = (
                f"UPDATE {quote(Run._meta.db_table)} SET {quote('status')} = %s, "
                f"{quote('finished')} = %s, {quote('result')} = %s, {quote('error')} = %s, "
                f"{quote('metrics')} = %s WHERE {quote('id')} = %s"
            )
            with connection.cursor() as cursor:
                cursor.executemany(sql, rows)
        return mine

    def _held_rows(self, run_ids: list[str]) -> list:
        return list(
            Run.objects.select_for_update()
            .filter(pk__in=run_ids, worker_id=self.worker_id, status__in=Run.ACTIVE)
            .values_list("id", flat=True)
        )

    @staticmethod
    def _outcome_row(outcome: Outcome) -> tuple:
        """The UPDATE parameters, adapted by the model's own fields (JSON, UUID,
        datetime differ between SQLite and PostgreSQL)."""
        field = Run._meta.get_field
        return (
            outcome.status,
            field("finished").get_db_prep_save(timezone.now(), connection),
            field("result").get_db_prep_save(outcome.result, connection),
            field("error").get_db_prep_save(outcome.error, connection),
            field("metrics").get_db_prep_save(outcome.metrics, connection),
            field("id").get_db_prep_save(outcome.run_id, connection),
        )
