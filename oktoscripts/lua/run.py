"""The coroutine driver: one run of one script, from source to RunOutcome.

The main chunk and each listener callback run as Lua coroutines ("activations")
on a thread of the Lua pool. A binding that waits makes its coroutine yield;
the driver then awaits the binding on the asyncio loop and resumes the
coroutine with the answer. Only one resume of a run's runtime is in flight at
a time; activations of the same run interleave at their waits.

Limits: instructions and memory are enforced inside Lua (count hook,
max_memory). The wall-clock limit is watched here as well, because no hook
runs during a long C call or in LuaJIT's compiled code: one timer per
activation fires at its deadline; if the activation is waiting in a binding
the run ends there, if its Lua is running the hook is told to stop, and if
the thread is not back within GRACE_S the run ends anyway and its thread is
abandoned (see threads.py).

Cost per run matters (thousands of runs may sleep at once in one worker): a
resume is one job on the pool whose result comes back through the loop's
inbox (one wake-up of the loop for many results), and objects a run rarely
needs are made only when it does.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import logging
import re
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from oktoscripts.bus.listening import KEEP_ALIVE_S, Delivery, as_event_source
from oktoscripts.lua.binding import ArgumentError, Binding, Multi, binding_table, check_arguments
from oktoscripts.lua.context import (
    DEBUG_CALLS,
    ListenerSource,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    OutputLine,
    RunContext,
)
from oktoscripts.lua.debugger import DebugSession
from oktoscripts.lua.limits import (
    LIMIT_KINDS,
    Limits,
    describe_result_limit,
    result_limit_bytes,
)
from oktoscripts.lua.outcome import RunError, RunOutcome
from oktoscripts.lua.runtime import (
    DEFAULT_RUNTIME,
    HOOK_EVERY,
    RUNTIMES,
    LuaSandbox,
    Step,
    debug_rewrite,
    debugger_bytecode,
    lupa_module,
    weakly,
)
from oktoscripts.lua.threads import (
    LoopInbox,
    LuaThreadPool,
    after_job,
    default_pool,
    inbox_for,
)
from oktoscripts.lua.values import LuaCallback, OverBudget

__all__ = ["LuaRun", "Limits", "OutputLine", "RunError", "RunOutcome"]

log = logging.getLogger(__name__)

# How long a thread that should have stopped may take before it is abandoned.
GRACE_S = 0.5


class _Activation:
    """The main chunk, or one call of a listener callback."""

    __slots__ = (
        "kind",
        "deadline",
        "co",
        "instructions",
        "timer",
        "overdue",
        "waiting",
        "line",
        "ended",
    )

    def __init__(self, kind: str, deadline: float) -> None:
        self.kind = kind  # "main" | "listener"
        self.deadline = deadline  # time.monotonic()
        self.co: Any = None  # the number of its driver coroutine
        self.instructions = 0
        self.timer: asyncio.TimerHandle | None = None
        self.overdue = False  # its deadline has passed
        self.waiting = False  # waiting in a binding, at `line`
        self.line: int | None = None
        self.ended = False  # it ran to its end (returned, raised, or went over a limit)


class _Stopped(Exception):
    """The run reached its outcome elsewhere; this activation just stops."""


class LuaRun:
    """One run of a script. `await run()` once; `cancel()` from anywhere."""

    # A worker holds thousands at once: slots save a dict of 1.5 KB each.
    __slots__ = (
        "_binding_calls",
        "_binding_names",
        "_bindings",
        "_cancel_requested",
        "_current",
        "_fresh_callbacks",
        "_inbox",
        "_inflight",
        "_inflight_waiter",
        "_instructions",
        "_last_line",
        "_last_token",
        "_listeners",
        "_listeners_idle",
        "_listening_callbacks",
        "_loop",
        "_lua_lock",
        "_paused_acts",
        "_peak_memory",
        "_pending",
        "_sandbox",
        "_started",
        "_stop_reason",
        "_tasks",
        "_terminal",
        "_trip",
        "args",
        "ctx",
        "debug",
        "executor",
        "gate",
        "limits",
        "listener_key",
        "name",
        "on_listener_event",
        "on_output",
        "on_status",
        "output_lines",
        "principal",
        "replay_key",
        "result_bytes",
        "run_id",
        "runtime",
        "services",
        "source",
        "__weakref__",  # its callbacks hold it weakly (weakly())
    )

    def __init__(
        self,
        source: str,
        *,
        name: str = "script",
        run_id: str = "",
        args: dict | None = None,
        limits: Limits | None = None,
        runtime: str = DEFAULT_RUNTIME,
        services: Any = None,
        on_output: Callable[[OutputLine], None] | None = None,
        on_status: Callable[[str], None] | None = None,
        on_listener_event: Callable[[Any], None] | None = None,
        executor: concurrent.futures.Executor | None = None,
        listener_key: str = "",
        principal: Any = None,
        replay_key: str = "",
        debug: DebugSession | None = None,
        gate: Any = None,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown Lua runtime {runtime!r} (use one of {', '.join(RUNTIMES)})")
        self.source = source
        self.name = _chunk_name(name)
        self.run_id = run_id
        self.args = dict(args or {})
        self.limits = limits or Limits.defaults()
        self.result_bytes = result_limit_bytes()
        self.runtime = runtime
        self.services = services
        self.listener_key = listener_key
        self.replay_key = replay_key
        # The run's device gate (oktoscripts/runs/gates.py): a plan intercepting
        # writes, a recording; None: device calls go straight out.
        self.gate = gate
        self.principal = principal  # an oktoscripts.runs.principal.Principal
        self.on_output = on_output
        self.on_status = on_status
        # Called on the loop with each event a listener callback starts on
        # (the worker announces it: deployed listeners' counts, the benchmark).
        self.on_listener_event = on_listener_event
        self.executor = executor or default_pool()
        self.output_lines: list[OutputLine] = []

        self._cancel_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_reason: str | None = None  # read by the hook: stop now, for this reason
        self._trip: tuple[str, int | None] | None = None  # (limit, line) where Lua stopped
        self._last_line: int | None = None
        self._current: _Activation | None = None
        self._instructions = 0
        self._peak_memory = 0
        self._binding_calls: dict[str, int] = {}
        self._pending: dict[int, tuple[str, Any]] = {}
        self._last_token = 0
        self._inflight: Any = None  # the pool job of the resume in flight
        self._inflight_waiter: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()
        self._listeners = 0
        self._listeners_idle: asyncio.Event | None = None
        self._bindings: tuple[Binding, ...] = ()
        self._binding_names: tuple[bytes, ...] = ()
        self._sandbox: LuaSandbox | None = None
        # Functions passed to the binding call in progress; those made listeners.
        self._fresh_callbacks: list[LuaCallback] = []
        self._listening_callbacks: set[int] = set()
        self._inbox: LoopInbox | None = None
        # A debug run's session (debugger.py), and its activation while paused.
        self.debug = debug
        self._paused_acts: dict[int, _Activation] = {}  # by driver coroutine number
        if debug is not None:
            debug.attach(self)

    # ------------------------------------------------------------------ public

    def cancel(self) -> None:
        """Stop the run (thread-safe). A run waiting or sleeping ends at once."""
        self._cancel_requested = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_cancel)

    async def run(self) -> RunOutcome:
        loop = self._loop = asyncio.get_running_loop()
        self._inbox = inbox_for(loop)
        # (The first run of a process imports every binding module: not the
        # script's time.)
        self._bindings, self._binding_names = binding_table()
        self._started = time.monotonic()
        self._terminal: asyncio.Future[RunOutcome] = loop.create_future()
        self._lua_lock = asyncio.Lock()
        self.ctx = RunContext(
            run_id=self.run_id,
            script_name=self.name,
            args=self.args,
            services=self.services,
            limits=self.limits,
            loop=loop,
            # Weakly: the run holds its context; a context holding the run
            # would make a cycle that only the cyclic collector frees.
            emit=weakly(self._emit),
            start_listener=weakly(self._start_listener_threadsafe),
            listener_key=self.listener_key,
            memory_room=weakly(self._memory_room),
            principal=self.principal,
            replay_key=self.replay_key,
            gate=self.gate,
        )
        if self.debug is not None:
            self.ctx.debug_calls = collections.deque(maxlen=DEBUG_CALLS)
        if self._cancel_requested:
            self._on_cancel()
        self._status("running")
        main = self._spawn(self._main())
        try:
            outcome = await asyncio.shield(self._terminal)
        except asyncio.CancelledError:
            self._on_cancel()
            raise
        finally:
            self._finish(main)
            if self.debug is not None:
                done = self._terminal.done()
                self.debug.ended(self._terminal.result().status if done else "cancelled")
        # Output lines the Lua thread queued before the end reach on_output
        # before the outcome does.
        if self.ctx.output_queued():
            await asyncio.sleep(0)
        return outcome

    # ------------------------------------------------------------------ flow

    async def _main(self) -> None:
        try:
            if self.debug is not None:
                # Breakpoints in place before the first line (the wait is
                # not the script's time).
                await self.debug.configured()
                self._started = time.monotonic()
            act = self._activation("main", self._started + self.limits.wall_seconds)
            values = await self._drive(act, ())
            result = values[0] if len(values) == 1 else (values or None)
            if self._listeners:
                self._status("listening")
                await self._idle_event().wait()
            self._conclude(self._outcome("succeeded", result=result))
        except _Stopped:
            pass
        except Exception as exc:  # an engine bug must still end the run
            log.exception("run %s: engine failure", self.run_id)
            self._conclude(self._failure(f"internal error: {exc}", None, []))

    def _activation(self, kind: str, deadline: float) -> _Activation:
        act = _Activation(kind, deadline)
        act.timer = self._loop.call_at(self._loop_time(deadline), self._deadline_passed, act)
        return act

    async def _drive(self, act: _Activation, args: tuple) -> list:
        """Resume `act` until it finishes; returns its values. The main
        chunk (no coroutine yet) is set up, compiled and started in the same
        trip to the Lua thread as its first resume."""
        try:
            while True:
                if act.co is None:
                    step = await self._in_lua(act, self._begin, act)
                else:
                    step = await self._in_lua(act, self._step, act, args)
                if step.kind == "wait" and step.token == 0:  # the debugger paused it
                    args = await self._debug_pause(act, "stack")
                    continue
                if step.kind == "wait":
                    args = await self._wait_binding(act, step.token, step.line)
                    continue
                act.ended = True
                if step.kind == "done":
                    return step.values or []
                if step.kind == "syntax":
                    raise self._stop_with(step.error)
                if step.kind == "error":
                    if self.debug is not None and self.debug.break_on_error:
                        await self._debug_pause(act, "error_pause")
                    raise self._stop_with(self._error_outcome(step))
                raise self._stop_with(self._limit_outcome())
        finally:
            if act.timer is not None:
                act.timer.cancel()

    def _begin(self, act: _Activation) -> Step:
        """On the Lua thread: the sandbox, the compiled chunk and its first
        resume (or the outcome of a syntax error, as a "syntax" Step)."""
        lupa = lupa_module(self.runtime)
        try:
            self._sandbox = sandbox = LuaSandbox(
                self._lua_call,
                self._lua_tick,
                self._lua_trip,
                self._lua_output,
                runtime=self.runtime,
                memory_bytes=self.limits.memory_bytes,
                result_bytes=self.result_bytes,
                binding_names=self._binding_names,
                debug=weakly(self._lua_debug) if self.debug is not None else None,
            )
            step = sandbox.begin(self.source, self.name, self.args)
        except (lupa.LuaMemoryError, OverBudget):
            # Out of memory in the first resume, a limit too small for even
            # the sandbox and the chunk, or arguments too big for it.
            self._trip = self._trip or ("memory_bytes", self._last_line)
            return Step("limit")
        except lupa.LuaError as exc:
            return Step("error", error=_text(exc), frames=[])
        if step.kind == "syntax":
            line = _line_of(step.error, self.name)
            error = RunError(message=step.error, line=line, traceback=[], kind="syntax")
            return Step("syntax", error=self._outcome("failed", error=error))
        act.co = step.co
        self._over_budget(step)
        self._peak_memory = max(self._peak_memory, sandbox.memory_used())
        self._close_if_over(act, step, sandbox)
        return step

    def _step(self, act: _Activation, args: tuple) -> Step:
        """On the Lua thread: one resume, with Lua's own failures mapped."""
        sandbox = self._sandbox
        if sandbox is None:  # the run is over and its runtime dropped
            return Step("limit")
        try:
            step = sandbox.step(act.co, args)
        except (sandbox.lupa.LuaMemoryError, OverBudget):
            self._trip = self._trip or ("memory_bytes", act.line or self._last_line)
            step = Step("limit")
        except sandbox.lupa.LuaError as exc:
            step = Step("error", error=_text(exc), frames=[])
        self._over_budget(step)
        self._peak_memory = max(self._peak_memory, sandbox.memory_used())
        self._close_if_over(act, step, sandbox)
        return step

    def _over_budget(self, step: Step) -> None:
        """A step whose values could not be converted within the limits
        (memory, result): that limit ends the run."""
        if step.kind == "limit" and step.error:
            self._trip = self._trip or (step.error, None)  # no line of its own

    def _memory_room(self) -> int | None:
        """(For bindings, on the Lua thread.) What the memory limit leaves free."""
        sandbox = self._sandbox
        return sandbox.memory_room() if sandbox is not None else None

    def _close_if_over(self, act: _Activation, step: Step, sandbox: LuaSandbox) -> None:
        """On the Lua thread, after a step: when the main chunk has ended and
        no listener is left to call, nothing runs in this runtime again. It is
        freed on this thread, the one that built it (its memory goes back
        where the next runtime is built), once the step's result is on its
        way, instead of on the event loop's thread."""
        if act.kind != "main" or step.kind == "wait" or (step.kind == "done" and self._listeners):
            return
        if step.kind == "error" and self.debug is not None:
            return  # a pause on the error still reads it (released at the run's end)
        self._sandbox = None
        after_job(sandbox.close)

    async def _in_lua(self, act: _Activation, fn: Callable, *args: Any) -> Any:
        """Run fn on the Lua pool for `act` (its deadline timer holds the
        wall-clock limit meanwhile).

        When the run ends meanwhile (cancel, another activation's failure) the
        awaiting task is cancelled; _finish then reaps the thread."""
        async with self._lua_lock:
            if self._terminal.done():
                raise _Stopped
            self._current = act
            waiter = self._loop.create_future()
            self._inflight = self._post(fn, args, waiter)
            self._inflight_waiter = waiter
            if act.overdue:  # its turn came after its deadline
                self._stop_lua()
            try:
                return await waiter
            finally:
                self._current = None

    def _post(self, fn: Callable, args: tuple, waiter: asyncio.Future) -> Any:
        """fn(*args) on the pool, settling `waiter` through the loop's inbox."""
        if isinstance(self.executor, LuaThreadPool):
            return self.executor.post(fn, args, self._inbox, waiter)
        future = self.executor.submit(fn, *args)
        future.add_done_callback(partial(_settle_from, self._inbox, waiter))
        return future

    def _deadline_passed(self, act: _Activation) -> None:
        """The activation's wall-clock limit is up (loop timer)."""
        act.overdue = True
        if self._terminal.done():
            return
        if act.waiting:
            self._trip = ("wall_seconds", act.line)
            self._conclude(self._limit_outcome())
        elif self._current is act:
            self._stop_lua()
        # Otherwise it waits for its turn in Lua: _in_lua stops it then.

    def _stop_lua(self) -> None:
        """Past the deadline with Lua still running: the hook stops it if it
        can; otherwise the thread is stuck and gets abandoned."""
        self._stop_reason = self._stop_reason or "wall_seconds"
        self._loop.call_later(GRACE_S, self._grace_over, self._inflight_waiter)

    def _grace_over(self, waiter: asyncio.Future) -> None:
        if waiter is self._inflight_waiter and not waiter.done() and not self._terminal.done():
            self._trip = self._trip or ("wall_seconds", self._last_line)
            self._conclude(self._limit_outcome(stuck=True))

    async def _wait_binding(self, act: _Activation, token: int, line: int | None) -> tuple:
        """Await a waiting binding's call; the values to resume its coroutine with."""
        name, coro = self._pending.pop(token)
        if act.overdue:
            coro.close()
            self._trip = ("wall_seconds", line)
            raise self._stop_with(self._limit_outcome())
        act.waiting, act.line = True, line
        # Read by the binding as it starts (synchronously, on this await): the
        # script line a device call is recorded with.
        self.ctx.call_line = line
        try:
            result = await coro
        except ArgumentError as exc:
            return (2, str(exc))
        except OutputLimitExceeded:
            return (3, _REASON_CODES["output_bytes"])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("binding %s failed in run %s", name, self.run_id)
            return (2, f"{name}: {exc}")
        finally:
            act.waiting = False
        if isinstance(result, Multi):
            return (0, *result)
        return (0, result)

    def _loop_time(self, monotonic_deadline: float) -> float:
        """A time.monotonic() deadline on the loop's clock."""
        return self._loop.time() + (monotonic_deadline - time.monotonic())

    # ------------------------------------------------------------------ listeners

    def _start_listener_threadsafe(
        self, source: ListenerSource, callback: LuaCallback, parallel: int, name: str
    ) -> None:
        if callback._run_token is not self:
            raise ValueError("callback belongs to another run")
        self._listening_callbacks.add(callback._number)
        self._listeners += 1
        self._loop.call_soon_threadsafe(self._start_listener, source, callback, parallel, name)

    def _start_listener(
        self, source: ListenerSource, callback: LuaCallback, parallel: int, name: str
    ) -> None:
        self._idle_event().clear()
        self._spawn(self._listen(source, callback, parallel, name))

    async def _listen(
        self, source: ListenerSource, callback: LuaCallback, parallel: int, name: str
    ) -> None:
        """Take events only as callback slots free up: what the listener has
        not taken stays in its stream (and goes to the next run of a deployed
        listener if this one dies)."""
        source = as_event_source(source)
        handlers: set[asyncio.Task] = set()
        try:
            while True:
                while len(handlers) >= parallel:
                    await asyncio.wait(handlers, return_when=asyncio.FIRST_COMPLETED)
                batch = await source.next_batch(parallel - len(handlers))
                if not batch:
                    break
                for item in batch:
                    handler = self._spawn(self._handle_event(callback, item))
                    handlers.add(handler)
                    handler.add_done_callback(handlers.discard)
            if handlers:
                await asyncio.gather(*handlers)
        except _Stopped:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("listener %s of run %s failed", name, self.run_id)
            self.ctx.system(f"listener {name or ''} stopped: {exc}".replace("  ", " "))
        finally:
            try:
                await source.aclose()
            except Exception:  # the source's own cleanup problem
                log.debug("closing listener source failed", exc_info=True)
            self._listeners -= 1
            if self._listeners <= 0:
                self._idle_event().set()

    async def _handle_event(self, callback: LuaCallback, item: Any) -> None:
        """One callback for one event. An event from a stream is acknowledged
        once its callback ended, even in an error (it would fail again), but
        not when the run was stopped under it: the next run gets it."""
        delivery = item if isinstance(item, Delivery) else None
        event = delivery.data if delivery else item
        act = None
        keeper = self._spawn(_keep_alive(delivery)) if delivery else None
        try:
            self._listener_event(event)
            act = self._activation("listener", time.monotonic() + self.limits.wall_seconds)
            act.co = await self._in_lua(act, self._start_callback, callback._number)
            await self._drive(act, (event,))
        except _Stopped:  # the run ended meanwhile; nobody awaits this task
            pass
        finally:
            if keeper is not None:
                keeper.cancel()
            if act is not None and act.timer is not None:
                act.timer.cancel()
            if delivery is not None and act is not None and act.ended:
                await delivery.ack()

    def _start_callback(self, number: int) -> int:
        """On the Lua thread: a driver coroutine for kept function `number`."""
        sandbox = self._sandbox
        if sandbox is None:  # the run is over and its runtime dropped
            raise _Stopped
        return sandbox.start(number)

    # ------------------------------------------------------------------ host side of Lua
    # Called by the engine chunk, on the Lua thread. None of them may raise:
    # lupa would hand the exception object to the script as its error value.

    def _lua_call(self, index: int, *args: Any) -> tuple:
        sandbox = self._sandbox
        if sandbox is None:  # the run is over and its runtime dropped
            return (3, _REASON_CODES["cancelled"])
        # Lifted first: lupa pushes what we return outside Lua's protection.
        sandbox.disarm()
        try:
            return self._call_binding(sandbox, self._bindings[index - 1], args)
        except Exception:
            log.exception("run %s: binding call failed in the engine", self.run_id)
            return (2, b"internal error in call")

    def _call_binding(self, sandbox: LuaSandbox, binding: Binding, args: tuple) -> tuple:
        if self._stop_reason:
            return (3, _REASON_CODES[self._stop_reason])
        calls = self._binding_calls
        calls[binding.name] = calls.get(binding.name, 0) + 1
        try:
            return self._call_checked(sandbox, binding, args)
        finally:
            if self._fresh_callbacks:
                self._release_unused(sandbox, binding)

    def _call_checked(self, sandbox: LuaSandbox, binding: Binding, args: tuple) -> tuple:
        try:
            values = sandbox.arguments(args, self._wrap_function)
            checked = check_arguments(binding, values)
        except OverBudget:
            return (3, _REASON_CODES["memory_bytes"])
        except ArgumentError as exc:
            return (2, str(exc).encode())
        except ValueError as exc:
            return (2, f"{binding.name}: {exc}".encode())
        if self._current is not None:
            self.ctx.deadline = self._current.deadline
        if binding.waits:
            self._last_token += 1
            self._pending[self._last_token] = (binding.name, binding.func(self.ctx, *checked))
            return (1, self._last_token)
        try:
            result = binding.func(self.ctx, *checked)
            values = tuple(result) if isinstance(result, Multi) else (result,)
            return (0, *sandbox.lua_values(values))
        except ArgumentError as exc:
            return (2, str(exc).encode())
        except OutputLimitExceeded:
            return (3, _REASON_CODES["output_bytes"])
        except (MemoryLimitExceeded, OverBudget):
            return (3, _REASON_CODES["memory_bytes"])
        except Exception as exc:
            log.exception("binding %s failed in run %s", binding.name, self.run_id)
            return (2, f"{binding.name}: {exc}".encode())

    def _lua_tick(self, memory_kb: float, line: int | None, amount: int) -> tuple:
        """A limit check from the engine, after `amount` instructions (under
        LuaJIT: loop iterations and calls, counted as that many
        instructions). Returns (reason code, 0) to stop, else (None, how
        many instructions the running activation has left)."""
        try:
            self._instructions += amount
            memory = int(memory_kb * 1024)
            if memory > self._peak_memory:
                self._peak_memory = memory
            if line:
                self._last_line = line
            if self._stop_reason is None:
                self._stop_reason = self._over_limit(amount)
            if self._stop_reason:
                return (_REASON_CODES[self._stop_reason], 0)
            act = self._current
            left = self.limits.instructions
            if act is not None:
                left = left - act.instructions + 1
            if self.debug is not None and self.debug.news:
                return (None, left, True)  # the debugger fetches its news
            return (None, left)
        except Exception:
            log.exception("run %s: limit check failed", self.run_id)
            return (None, HOOK_EVERY)

    def _over_limit(self, amount: int) -> str | None:
        if self._cancel_requested:
            return "cancelled"
        act = self._current
        if act is None:
            return None
        act.instructions += amount
        if act.instructions > self.limits.instructions:
            return "instructions"
        if time.monotonic() > act.deadline:
            return "wall_seconds"
        return None

    def _lua_debug(self, op: bytes, text: bytes | None = None) -> Any:
        """(Debug runs.) The debugger's code, a script rewritten with line
        checks, or the session's breakpoints and options (see debugger.lua)."""
        try:
            if op == b"sync":
                return self.debug.sync_values()
            if op == b"code":
                return debugger_bytecode(self.runtime)
            if op == b"rewrite":
                return debug_rewrite(self.runtime, text)
        except Exception:
            log.exception("run %s: debugger request %r failed", self.run_id, op)
        return None

    # ------------------------------------------------------------------ debugging

    async def _debug_pause(self, act: _Activation, op: str) -> tuple:
        """The debugger paused `act` (op "stack") or the run failed with
        break on error (op "error_pause"): wait for the next command, the
        pause counting against no limit of the activation. The values to
        resume the paused coroutine with."""
        if act.timer is not None:
            act.timer.cancel()
        started = time.monotonic()
        self._paused_acts[act.co] = act
        try:
            info = await self._in_lua(act, self._debug_call, op, (act.co,))
            if not isinstance(info, dict) or "frames" not in info:
                return (b"continue", None)
            info["calls"] = list(self.ctx.debug_calls or ())
            info["activation"], info["kind"] = act.co, act.kind
            budget = self.debug.pause_limit_s - self.debug.paused_s
            try:
                command, line = await self.debug.wait_command(act.co, info, max(budget, 0.0))
            except TimeoutError:
                raise self._stop_with(self._debug_timeout(info.get("line"))) from None
            if op == "error_pause":  # nothing to resume: the capture goes
                await self._in_lua(act, self._debug_call, "release", (act.co,))
            return (command.encode(), line)
        finally:
            self._paused_acts.pop(act.co, None)
            paused = time.monotonic() - started
            self.debug.paused_s += paused
            act.deadline += paused
            act.timer = self._loop.call_at(
                self._loop_time(act.deadline), self._deadline_passed, act
            )

    async def debug_request(self, op: str, activation: int, *args: Any) -> Any:
        """A request about paused activation `activation` (DebugSession's
        stack, scopes...)."""
        act = self._paused_acts.get(activation)
        if act is None:
            return {"error": "the run is not paused"}
        return await self._in_lua(act, self._debug_call, op, (activation, *args))

    def _debug_call(self, op: str, args: tuple) -> Any:
        """On the Lua thread: one request to debugger.lua."""
        sandbox = self._sandbox
        if sandbox is None:
            return {"error": "the run is over"}
        try:
            return sandbox.debug_request(op, *args)
        except Exception as exc:
            log.warning("run %s: debugger request %s failed: %s", self.run_id, op, exc)
            return {"error": f"debugger: {_text(exc)}"}

    def _debug_timeout(self, line: int | None) -> RunOutcome:
        where = f"{self.name}:{line}: " if line else f"{self.name}: "
        message = (
            f"{where}cancelled: the debug run stayed paused longer than its limit of "
            f"{self.debug.pause_limit_s:g} s (OKTOSCRIPTS_DEBUG_WALL_SECONDS)"
        )
        return self._outcome("cancelled", error=RunError(message, line, [], "cancelled"))

    def _lua_trip(self, reason: bytes, line: int | None) -> None:
        try:
            if self._trip is None:
                self._trip = (reason.decode(), line or self._last_line)
            self._stop_reason = self._stop_reason or reason.decode()
        except Exception:
            log.exception("run %s: recording a limit failed", self.run_id)

    def _lua_output(self, text: bytes) -> int | None:
        try:
            self.ctx.output(text.decode("utf-8", errors="replace"))
        except OutputLimitExceeded:
            return _REASON_CODES["output_bytes"]
        except Exception:
            log.exception("run %s: output failed", self.run_id)
        return None

    def _wrap_function(self, fn: Any) -> LuaCallback:
        """A Lua function in a binding's arguments (on the Lua thread, inside
        the call): kept on the Lua side, `fn` itself dropped before the call
        returns, while the coroutine it may belong to still runs."""
        callback = LuaCallback(self._sandbox.keep(fn), self)
        self._fresh_callbacks.append(callback)
        return callback

    def _release_unused(self, sandbox: LuaSandbox, binding: Binding) -> None:
        """After a binding call: functions it did not make listeners are
        forgotten (a waiting binding may still do so later: those stay)."""
        fresh, self._fresh_callbacks = self._fresh_callbacks, []
        if binding.waits:
            return
        for callback in fresh:
            if callback._number not in self._listening_callbacks:
                sandbox.release(callback._number)

    # ------------------------------------------------------------------ outcomes

    def _on_cancel(self) -> None:
        self._cancel_requested = True
        self._stop_reason = self._stop_reason or "cancelled"
        if hasattr(self, "ctx"):
            self.ctx.mark_cancelled()
        if hasattr(self, "_terminal") and not self._terminal.done():
            self._trip = self._trip or ("cancelled", self._last_line)
            self._conclude(self._limit_outcome())

    def _stop_with(self, outcome: RunOutcome) -> _Stopped:
        self._conclude(outcome)
        return _Stopped()

    def _conclude(self, outcome: RunOutcome) -> None:
        if not self._terminal.done():
            self._terminal.set_result(outcome)

    def _error_outcome(self, step: Step) -> RunOutcome:
        err = step.error
        if isinstance(err, str):
            message = err
        elif err is None:
            message = "nil"
        else:
            message = "error object: " + json.dumps(err, ensure_ascii=False)
        frames = step.frames or []
        line = _line_of(message, self.name) if isinstance(err, str) else None
        if line is None and frames:
            line = frames[0]["line"]
        # Raised inside the engine on the script's behalf, or by yield (no
        # position): placed at the script's line instead.
        engine_place = _ENGINE_PLACE.match(message)
        if engine_place:
            message = message[engine_place.end() :]
        across = _YIELD_ACROSS_C.fullmatch(message)
        if across:
            message = f"{message} ({_YIELD_HINT})"
        if (engine_place or across) and line is not None:
            message = f"{self.name}:{line}: {message}"
        return self._failure(message, line, frames)

    def _failure(self, message: str, line: int | None, frames: list[dict]) -> RunOutcome:
        return self._outcome("failed", error=RunError(message, line, frames, "error"))

    def _limit_outcome(self, stuck: bool = False) -> RunOutcome:
        reason, line = self._trip or (self._stop_reason or "wall_seconds", self._last_line)
        if reason == "cancelled":
            error = RunError("cancelled", line, [], "cancelled")
            return self._outcome("cancelled", error=error)
        where = f"{self.name}:{line}: " if line else f"{self.name}: "
        if reason == "result_bytes":
            limit = describe_result_limit(self.result_bytes)
            message = f"{where}{limit} exceeded (the value as JSON)"
        else:
            message = f"{where}{self.limits.describe(reason)} exceeded"
        if stuck:
            message += " (in a call that could not be interrupted)"
        error = RunError(message, line, [], "limit", LIMIT_KINDS.get(reason, reason))
        return self._outcome("limit_exceeded", error=error)

    def _outcome(
        self, status: str, result: Any = None, error: RunError | None = None
    ) -> RunOutcome:
        metrics = {
            "duration_s": round(time.monotonic() - self._started, 6),
            "instructions": self._instructions,
            "peak_memory_bytes": self._peak_memory,
            "binding_calls": dict(self._binding_calls),
            "device_calls": list(self.ctx.device_calls),
            "runtime": self.runtime,
        }
        if self.gate is not None:
            metrics.update(self.gate.metrics())
        return RunOutcome(status, result, error, metrics)

    def _finish(self, main: asyncio.Task) -> None:
        self._stop_reason = self._stop_reason or "cancelled"
        self.ctx.close()
        # Asked of the job itself, before the tasks are cancelled: cancelling
        # the task that awaits the job's waiter cancels the waiter too.
        job = self._inflight
        in_lua = job is not None and _job_running(job)
        for task in list(self._tasks):
            task.cancel()
        for _, coro in self._pending.values():
            coro.close()
        self._pending.clear()
        if in_lua:
            self._loop.call_later(GRACE_S, self._reap, job)
        else:
            self._release_runtime()

    def _release_runtime(self) -> None:
        """The run is over: its Lua state goes now, not whenever the LuaRun
        does (a worker keeps it until the outcome is stored)."""
        self._sandbox = None
        self._inflight = self._inflight_waiter = None

    def _reap(self, job: Any) -> None:
        """A run ended while its Lua was still running and GRACE_S has passed:
        if the thread is still not back, abandon it."""
        if _job_running(job) and isinstance(self.executor, LuaThreadPool):
            self.executor.abandon(job)
            log.warning("run %s: abandoned a Lua thread stuck in a long call", self.run_id)
        self._release_runtime()

    # ------------------------------------------------------------------ plumbing

    def _emit(self, line: OutputLine) -> None:
        self.output_lines.append(line)
        if self.on_output is not None:
            try:
                self.on_output(line)
            except Exception:
                log.exception("on_output failed")

    def _listener_event(self, event: Any) -> None:
        if self.on_listener_event is not None:
            try:
                self.on_listener_event(event)
            except Exception:
                log.exception("on_listener_event failed")

    def _status(self, status: str) -> None:
        if self.on_status is not None:
            try:
                self.on_status(status)
            except Exception:
                log.exception("on_status failed")

    def _idle_event(self) -> asyncio.Event:
        """Set while no listener of the run is left (made on first need)."""
        if self._listeners_idle is None:
            self._listeners_idle = asyncio.Event()
        return self._listeners_idle

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


_ENGINE_PLACE = re.compile(r"^\(engine\):\d+: ")
# Lua 5.1: "metamethod/C-call boundary", LuaJIT: "C-call boundary".
_YIELD_ACROSS_C = re.compile(r"attempt to yield across [\w/-]+ boundary")
_YIELD_HINT = (
    "a function that waits, like sleep or a device call, cannot run inside a "
    "metamethod, a for ... in iterator, or a table.sort or string.gsub callback"
)

# Why Lua must stop, as the numbers sandbox.lua's REASONS table maps back.
_REASON_CODES = {
    name: code
    for code, name in enumerate(
        ("instructions", "wall_seconds", "memory_bytes", "output_bytes", "cancelled"), start=1
    )
}

_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f:]")


def _chunk_name(name: str) -> str:
    """A script name usable as a chunk name: one line, no colon (the message
    format is NAME:LINE:)."""
    cleaned = _UNSAFE_IN_NAME.sub("_", name or "script").strip() or "script"
    return cleaned[:80]


def _line_of(message: str | None, name: str) -> int | None:
    if not message:
        return None
    match = re.match(re.escape(name) + r":(\d+):", message)
    return int(match.group(1)) if match else None


def _settle_from(
    inbox: LoopInbox, waiter: asyncio.Future, future: concurrent.futures.Future
) -> None:
    """A generic executor's future done: settle the loop-side waiter."""
    try:
        result, exc = future.result(), None
    except BaseException as error:  # noqa: BLE001 - handed over, cancellation included
        result, exc = None, error
    inbox.put(waiter, result, exc)


def _text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        return arg.decode("utf-8", errors="replace")
    return str(arg) or type(exc).__name__


def _job_running(job: Any) -> bool:
    """A LuaThreadPool job or an executor's future still executing."""
    finished = getattr(job, "finished", None)
    return not finished if finished is not None else not job.done()


async def _keep_alive(delivery: Delivery) -> None:
    """While a callback runs, its event stays with this listener."""
    while True:
        await asyncio.sleep(KEEP_ALIVE_S)
        await delivery.keep_alive()
