"""The worker: takes run requests from the queue and runs them, many at once.

One asyncio process. Lua executes on a small thread pool (the engine's
LuaRun); waiting runs cost no thread. For each run the worker claims the Run
row (a request for a run that is not "queued" any more is dropped: runs are
never retried), acknowledges the request, publishes every output line live
as it is printed, stores output, result, error and metrics through the
RunStore (batched), and publishes the final status once it is stored.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import secrets
import socket
import time
import uuid
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from functools import partial

from django.db import InterfaceError, OperationalError
from django.utils import timezone
from nats.aio.client import Client
from nats.aio.msg import Msg

from oktoscripts import permissions

# Importing the bindings registers the Lua API into the engine before any run.
from oktoscripts.bindings.services import Services
from oktoscripts.bus import subjects
from oktoscripts.bus.outbox import Outbox
from oktoscripts.bus.retry import retrying
from oktoscripts.bus.streams import ensure_run_queue, ensure_workers_bucket
from oktoscripts.lua.debugger import DebugSession
from oktoscripts.lua.threads import LuaThreadPool
from oktoscripts.metrics import series
from oktoscripts.runs import callbus, conf, debugbus, gates, listenerevents, live, stranded
from oktoscripts.runs.caps import capped
from oktoscripts.runs.heartbeat import Heartbeat, LostRunSweeper
from oktoscripts.runs.models import Run
from oktoscripts.runs.principal import Principal
from oktoscripts.runs.puller import RequestPuller
from oktoscripts.runs.store import ClaimedRun, RunStore

log = logging.getLogger(__name__)

# Allocations between two collections of the youngest generation, and
# collections of each generation between two of the next (Python: 700, 10, 10).
GC_THRESHOLDS = (10_000, 10, 10)

# While the database is unreachable, a finished run's outcome is retried this often.
FINISH_RETRY_S = 5.0


def new_worker_id() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40]
    return f"{host}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass
class WorkerOptions:
    concurrency: int
    lua_threads: int
    heartbeat_s: float
    lost_after_s: float
    stuck_restart_s: float = 60.0
    debug_pause_s: float = 1800.0  # a debug run's paused time in all

    @classmethod
    def from_settings(cls) -> WorkerOptions:
        return cls(
            conf.concurrency(),
            conf.lua_threads(),
            conf.heartbeat_interval(),
            conf.lost_after(),
            conf.stuck_restart(),
            conf.debug_pause_seconds(),
        )


class _Held:
    """A run request this worker took, from delivery to stored outcome."""

    def __init__(self) -> None:
        self.lua = None  # the LuaRun once created
        self.cancel_requested = False
        self.final_status: str | None = None  # once its outcome is stored

    def cancel(self) -> None:
        self.cancel_requested = True
        if self.lua is not None:
            self.lua.cancel()


def _queue_wait(claimed: ClaimedRun) -> float | None:
    """Seconds from the run's creation (the submitter's clock) to now."""
    if claimed.created is None:
        return None
    return (timezone.now() - claimed.created).total_seconds()


async def _unsubscribe(subscription: object) -> None:
    try:
        await subscription.unsubscribe()
    except Exception as exc:  # noqa: BLE001 - the connection is gone: so is the subscription
        log.debug("unsubscribing failed: %s", exc)


def internal_error(message: str) -> dict:
    return {"message": message, "line": None, "traceback": [], "kind": "error", "limit": None}


def _settle_collector() -> None:
    """Python's cyclic collector took a third of a busy worker's CPU: each
    collection of the oldest generation walks every object of the process,
    and a worker holding thousands of runs allocates fast enough to run many.
    What exists once the worker is up (Django, the bindings, the Lua modules)
    lives as long as the process: frozen, it is never walked again. Young
    collections are made rarer too: reference counting frees almost all of a
    run's objects, the collector only finds the odd cycle."""
    gc.collect()  # what is garbage already is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Worker:
    def __init__(
        self, nc: Client, services: Services, options: WorkerOptions, worker_id: str | None = None
    ) -> None:
        self.nc = nc
        self.services = services
        self.options = options
        self.worker_id = worker_id or new_worker_id()
        self.store = RunStore(self.worker_id)
        self.outbox = Outbox(nc)
        self._held: dict[str, _Held] = {}
        self._lua_threads = LuaThreadPool(options.lua_threads)
        self._tasks: set[asyncio.Task] = set()
        self._background: list[asyncio.Task] = []
        # Set when this process must be replaced (see _watch_stuck_threads).
        self.needs_restart = asyncio.Event()
        self._puller: RequestPuller | None = None
        self._heartbeat: Heartbeat | None = None
        self._accepting = False
        self._idle = asyncio.Event()
        self._idle.set()
        series.watch(series.RUNS_HELD, lambda: self.load)
        series.watch(series.RUNS_CAPACITY, lambda: self.options.concurrency)
        series.watch(series.LUA_THREADS_STUCK, lambda: self._lua_threads.stuck)

    @property
    def load(self) -> int:
        return len(self._held)

    async def start(self) -> None:
        await self._warm_up()
        _settle_collector()
        js = self.nc.jetstream()
        stream = await ensure_run_queue(js)
        kv = await ensure_workers_bucket(js, ttl_s=max(60.0, 4 * self.options.lost_after_s))
        self.outbox.start()
        self._heartbeat = Heartbeat(kv, self.worker_id, self.options.heartbeat_s, lambda: self.load)
        await retrying(self._heartbeat.beat)  # alive before holding any run
        sweeper = LostRunSweeper(
            kv,
            self.store,
            self.worker_id,
            self.options.heartbeat_s,
            self.options.lost_after_s,
            self._announce_lost,
        )
        loop = asyncio.get_running_loop()
        self._background = [
            loop.create_task(self._heartbeat.run(), name="heartbeat"),
            loop.create_task(sweeper.run(), name="sweeper"),
            loop.create_task(stranded.run_sweeps(self.nc, self.store, stream), name="stranded"),
            loop.create_task(self._watch_stuck_threads(), name="stuck threads"),
        ]
        await self.nc.subscribe(subjects.run_cancel("*"), cb=self._on_cancel)
        await self.nc.subscribe(subjects.run_calls("*"), cb=self._on_calls_request)
        self._accepting = True
        self._puller = RequestPuller(
            self.nc, stream, subjects.RUN_QUEUE_CONSUMER, self._on_request, self._room
        )
        await self._puller.start()
        log.info(
            "worker %s taking runs (at most %d at once, %d Lua threads)",
            self.worker_id,
            self.options.concurrency,
            self.options.lua_threads,
        )

    async def _warm_up(self) -> None:
        """Import the bindings and the Lua runtimes now: the first run must not
        block the event loop for the imports (heartbeats, acks and other runs wait)."""
        from oktoscripts.lua.run import LuaRun
        from oktoscripts.lua.runtime import RUNTIMES

        for runtime in RUNTIMES:
            outcome = await LuaRun(
                "return 1", name="warm-up", runtime=runtime, executor=self._lua_threads
            ).run()
            if outcome.status != "succeeded":
                log.error("the %s runtime does not work here: %s", runtime, outcome.error)

    async def _watch_stuck_threads(self) -> None:
        """Set ``needs_restart`` once a Lua thread stayed stuck for
        ``stuck_restart_s``: only a new process gets its core back."""
        stuck_since: float | None = None
        while True:
            await asyncio.sleep(1.0)
            if not self._lua_threads.stuck:
                stuck_since = None
                continue
            now = asyncio.get_running_loop().time()
            stuck_since = stuck_since if stuck_since is not None else now
            if now - stuck_since >= self.options.stuck_restart_s:
                log.error(
                    "worker %s: a Lua thread has been stuck for %.0f s in a call that cannot be "
                    "interrupted; stopping this worker so that a fresh one takes its place",
                    self.worker_id,
                    now - stuck_since,
                )
                self.needs_restart.set()
                return

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop taking runs, give the held ones ``grace_s`` to end, cancel the rest."""
        if not self._accepting:
            return
        self._accepting = False
        if self._puller:
            await self._puller.stop()
        if self._held:
            log.info("waiting up to %gs for %d runs", grace_s, len(self._held))
            try:
                await asyncio.wait_for(self._idle.wait(), grace_s)
            except TimeoutError:
                for held in self._held.values():
                    held.cancel()
                await self._idle.wait()
        for task in self._background:
            task.cancel()
        await self.store.close()
        if self._heartbeat:
            await self._heartbeat.remove()
        await self.outbox.stop()
        self._lua_threads.shutdown(wait=False)

    # -- taking requests ---------------------------------------------------

    def _room(self) -> int:
        return self.options.concurrency - len(self._held) if self._accepting else 0

    def _on_request(self, msg: Msg) -> None:
        try:
            run_id = str(uuid.UUID(json.loads(msg.data)["run_id"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.error("dropping a malformed run request: %r", msg.data[:200])
            self._spawn(msg.ack())
            return
        if run_id in self._held:  # redelivered while we still hold it
            self._spawn(msg.ack())
            return
        self._held[run_id] = _Held()
        self._idle.clear()
        self._spawn(self._take(run_id, msg))

    def _spawn(self, coro: Coroutine) -> None:
        # The loop keeps only weak references to tasks: hold them until done.
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, run_id: str, msg: Msg) -> None:
        try:
            try:
                claimed = await self.store.claim(run_id)
            except Exception as exc:  # noqa: BLE001 - database down: let the queue redeliver
                log.error("cannot claim run %s: %s", run_id, exc)
                await msg.nak(delay=5)
                return
            await msg.ack()
            del msg  # not kept for the whole run
            if claimed is None:
                log.info("dropped the request for run %s: it is not queued any more", run_id)
                return
            held, began = self._held[run_id], time.monotonic()
            series.run_started(claimed.started_by, _queue_wait(claimed))
            await self._execute(claimed, held)
            if held.final_status is not None:
                series.run_finished(claimed.started_by, held.final_status, time.monotonic() - began)
        finally:
            del self._held[run_id]
            if not self._held:
                self._idle.set()
            if self._puller:
                self._puller.top_up()

    # -- running -------------------------------------------------------------

    async def _execute(self, claimed: ClaimedRun, held: _Held) -> None:
        run_id = claimed.id
        self._publish_status(run_id, Run.Status.RUNNING, worker_id=self.worker_id)
        principal = Principal.of_run(
            claimed.user_id,
            claimed.started_by,
            claimed.bounded_by_author,
            claimed.script_version_id,
        )
        refusal = await self._refusal_to_run(principal)
        if refusal is not None:
            await self._finish(
                run_id, Run.Status.FAILED, None, internal_error(f"refused: {refusal}"), None
            )
            return
        try:
            recording = await self._recording(claimed) if claimed.mode == Run.Mode.REPLAY else None
            held.lua = self._lua_run(claimed, principal, recording)
        except Exception as exc:  # noqa: BLE001 - bad limits or runtime: the run fails
            await self._finish(run_id, Run.Status.FAILED, None, internal_error(str(exc)), None)
            return
        if held.cancel_requested:
            held.lua.cancel()
        debugging = await self._debug_requests(run_id, held.lua)
        try:
            outcome = await held.lua.run()
        except Exception as exc:
            log.exception("run %s: the engine failed", run_id)
            await self._finish(
                run_id, Run.Status.FAILED, None, internal_error(f"internal error: {exc}"), None
            )
            return
        finally:
            if debugging is not None:
                await _unsubscribe(debugging)
        error = asdict(outcome.error) if outcome.error is not None else None
        await self._finish(run_id, outcome.status, outcome.result, error, outcome.metrics)

    async def _refusal_to_run(self, principal: Principal) -> str | None:
        """Why the run's user may not run scripts (any more): deactivated, or a
        role without ``run_scripts`` since they started or configured it."""
        if principal.kind != "user":
            return None
        try:
            return await self.store.call(
                lambda: principal.refusal(permissions.RUN_SCRIPTS, author_too=False)
            )
        except Exception as exc:  # noqa: BLE001 - the database is away: do not run unchecked
            return f"the permission '{permissions.RUN_SCRIPTS}' could not be checked: {exc}"

    async def _recording(self, claimed: ClaimedRun) -> dict:
        """The recorded device calls a replay answers from: its test fixture's
        (read through the run's own row: the worker knows no fixture model), else
        the replayed run's."""
        fixture, metrics = await self.store.call(
            lambda: (
                (
                    Run.objects.filter(pk=claimed.id)
                    .values_list("fixture__recording", "replay_of__metrics")
                    .first()
                )
                or (None, None)
            )
        )
        if fixture is not None:
            return fixture
        recording = (metrics or {}).get("recording")
        if recording is None:
            raise ValueError("the replayed run has no recording of its device calls")
        return recording

    def _lua_run(
        self,
        claimed: ClaimedRun,
        principal: Principal,  # noqa: ANN202 - a LuaRun
        recording: dict | None = None,
    ):
        from oktoscripts.lua.limits import Limits
        from oktoscripts.lua.run import LuaRun

        run_id = claimed.id

        def on_output(line) -> None:  # noqa: ANN001 - an OutputLine
            message = live.output_message(
                run_id, line.seq, line.stream, line.text, line.level, line.time
            )
            self.outbox.put(message.subject, message.data)
            self.store.add_output(run_id, line.seq, line.stream, line.text, line.level, line.time)

        def on_status(status: str) -> None:
            if status == Run.Status.LISTENING:
                self.store.set_status_soon(run_id, status)
                self._publish_status(run_id, status)

        debug = None
        if claimed.debug:

            def on_event(event: dict) -> None:
                self.outbox.put(subjects.debug_events(run_id), debugbus.event_payload(event))

            debug = DebugSession(on_event=on_event, pause_limit_s=self.options.debug_pause_s)
        return LuaRun(
            claimed.code,
            name=claimed.script_name,
            run_id=run_id,
            args=claimed.args,
            limits=capped(Limits.with_overrides(claimed.limits)),
            runtime=claimed.runtime,
            services=self.services,
            on_output=on_output,
            on_status=on_status,
            on_listener_event=partial(listenerevents.announce_soon, self.services, run_id),
            executor=self._lua_threads,
            listener_key=claimed.listener_key,
            replay_key=claimed.replay_key,
            principal=principal,
            gate=gates.for_mode(claimed.mode, recording),
            debug=debug,
        )

    async def _finish(
        self, run_id: str, status: str, result: object, error: dict | None, metrics: dict | None
    ) -> None:
        refused_once = False
        while True:
            try:
                stored = await self.store.finish(run_id, status, result, error, metrics)
                break
            except (OperationalError, InterfaceError) as exc:
                # The database is away: keep the outcome and try again, or the
                # run would stay "running" for ever (its worker is alive).
                log.error("run %s: cannot store the outcome yet (%s); retrying", run_id, exc)
                await asyncio.sleep(FINISH_RETRY_S)
            except Exception as exc:  # noqa: BLE001 - e.g. a result the database refuses
                log.error("run %s: storing the outcome failed: %s", run_id, exc)
                if refused_once:
                    return  # even the plain failure was refused: nothing more to try
                refused_once = True
                status, result, metrics = Run.Status.FAILED, None, None
                error = internal_error(f"the outcome could not be stored: {exc}")
        if not stored:
            log.warning("run %s ended as %s, but it had been declared lost", run_id, status)
            return
        held = self._held.get(run_id)
        if held is not None:
            held.final_status = str(status)
        self._publish_status(run_id, status, result=result, error=error, metrics=metrics)

    def _publish_status(self, run_id: str, status: str, **details: object) -> None:
        message = live.status_message(run_id, str(status), **details)
        self.outbox.put(message.subject, message.data)

    def _announce_lost(self, run_id: str, error: dict) -> None:
        series.run_finished("", Run.Status.LOST, None)
        self._publish_status(run_id, Run.Status.LOST, error=error)

    # -- cancelling ----------------------------------------------------------

    async def _debug_requests(self, run_id: str, lua: object) -> object | None:
        """For a debug run: listen to its debugger requests while this worker
        holds it. Only the holder subscribes, so a request about a run no
        worker holds gets NATS "no responders" at once."""
        session = getattr(lua, "debug", None)
        if session is None:
            return None

        async def on_request(msg: Msg) -> None:
            if msg.reply:
                # A task of its own: an evaluate waits for the run's Lua
                # thread, and the run's other requests must not wait behind it.
                self._spawn(self._answer_debug(session, msg))

        return await self.nc.subscribe(subjects.debug_control(run_id), cb=on_request)

    async def _answer_debug(self, session: DebugSession, msg: Msg) -> None:
        answer = await debugbus.handle(session, msg.data)
        try:
            await msg.respond(debugbus.event_payload(answer))
        except Exception as exc:  # noqa: BLE001 - the requester went away
            log.debug("debug answer not sent: %s", exc)

    async def _on_calls_request(self, msg: Msg) -> None:
        """The IDE asks for the device calls of a run this worker may hold
        (oktoscripts/runs/callbus.py); the workers that do not hold it stay silent."""
        held = self._held.get(msg.subject.rsplit(".", 1)[-1])
        ctx = getattr(getattr(held, "lua", None), "ctx", None)
        if ctx is None or not msg.reply:
            return
        # An ordinary run's own recording; a replay's, the recording answering it.
        recording = getattr(ctx.gate, "calls", None)
        recording = recording if isinstance(recording, list) else []
        try:
            await msg.respond(callbus.answer_request(ctx.device_calls, recording, msg.data))
        except Exception as exc:  # noqa: BLE001 - the requester went away
            log.debug("device calls not sent: %s", exc)

    async def _on_cancel(self, msg: Msg) -> None:
        run_id = msg.subject.split(".")[-2]
        held = self._held.get(run_id)
        if held is not None:
            log.info("cancelling run %s", run_id)
            held.cancel()
