"""What a binding sees of the run that calls it: `ctx`."""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from oktoscripts.bus.listening import EventSource
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.values import LuaCallback


@dataclass
class OutputLine:
    seq: int
    stream: str  # "stdout" | "log" | "call" | "system"
    text: str
    time: float  # epoch seconds
    level: str | None = None


# What a listener reads: an async iterator of events, or an EventSource
# (oktoscripts.bus.listening) whose events are acknowledged once handled.
ListenerSource = AsyncIterator[dict] | EventSource


# A debug run keeps this many device calls, each payload cut to PAYLOAD_CHARS.
DEBUG_CALLS = 20
PAYLOAD_CHARS = 4000


def _payload_text(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "to_json"):
        value = value.to_json()
    text = value if isinstance(value, str) else json.dumps(value, default=str, indent=1)
    return text if len(text) <= PAYLOAD_CHARS else text[:PAYLOAD_CHARS] + " ..."


class OutputLimitExceeded(Exception):
    """Output went over the run's output_bytes limit."""


class MemoryLimitExceeded(Exception):
    """A binding would build more than the run's memory limit leaves room for."""


class RunContext:
    """The run as bindings see it. Built by LuaRun, one per run.

    Methods are safe to call from the Lua thread (sync bindings) and from the
    asyncio loop (async bindings).
    """

    # A worker holds thousands at once: slots save a dict of 1 KB each.
    __slots__ = (
        "_cancel_marked",
        "_cancelled",
        "_closed",
        "_device_calls_named",
        "_emit",
        "_listener_key",
        "_listeners_named",
        "_lock",
        "_loop",
        "_memory_room",
        "_output_bytes",
        "_queued",
        "_replay_key",
        "_seq",
        "_start_listener",
        "args",
        "call_line",
        "deadline",
        "debug_calls",
        "device_calls",
        "gate",
        "limits",
        "principal",
        "run_id",
        "script_name",
        "services",
        "__weakref__",
    )

    def __init__(
        self,
        *,
        run_id: str,
        script_name: str,
        args: dict,
        # The host's clients (oktoscripts.bindings.services.Services): opaque here.
        services: Any,
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        emit: Callable[[OutputLine], None],
        start_listener: Callable[[ListenerSource, LuaCallback, int, str], None],
        listener_key: str = "",
        memory_room: Callable[[], int | None] | None = None,
        # Who the run acts for (oktoscripts.runs.principal.Principal, or None):
        # guarded bindings ask it through binding_refusal().
        principal: Any = None,
        replay_key: str = "",
        gate: Any = None,
    ) -> None:
        self.run_id = run_id
        # Where device calls go through (oktoscripts/runs/gates.py), or None.
        self.gate = gate
        self.call_line: int | None = None  # the script line of the waiting call starting
        self.script_name = script_name
        self.args = args
        self.services = services
        # Who the run acts for; guarded bindings ask it (None: no one, refused).
        self.principal = principal
        self.limits = limits
        self.deadline = time.monotonic() + limits.wall_seconds
        self._cancelled: asyncio.Event | None = None
        self._cancel_marked = False
        self.device_calls: list[dict] = []
        # A debug run's last device calls with request and answer (the
        # debugger shows them); None in other runs, which keep no payloads.
        self.debug_calls: collections.deque | None = None
        self._loop = loop
        self._emit = emit
        self._start_listener = start_listener
        self._listener_key = listener_key
        self._memory_room = memory_room
        self._listeners_named = 0
        self._replay_key = replay_key
        self._device_calls_named = 0
        self._lock = threading.Lock()
        self._seq = 0
        self._output_bytes = 0
        self._closed = False
        self._queued: list[OutputLine] = []

    @property
    def cancelled(self) -> asyncio.Event:
        """Set when the run is cancelled. (Made on first use, on the loop
        thread: most runs never look at it.)"""
        if self._cancelled is None:
            self._cancelled = asyncio.Event()
            if self._cancel_marked:
                self._cancelled.set()
        return self._cancelled

    def mark_cancelled(self) -> None:
        """(Loop thread.) The run is cancelled: sets `cancelled`."""
        self._cancel_marked = True
        if self._cancelled is not None:
            self._cancelled.set()

    def memory_room(self) -> int:
        """Bytes the run's memory limit leaves free (its Lua heap counted):
        what a binding may build for it, in Python or in Lua. (On the Lua
        thread: in a binding that does not wait.)"""
        room = self._memory_room() if self._memory_room is not None else None
        return self.limits.memory_bytes if room is None else room

    def output_queued(self) -> bool:
        """Lines are on their way to the loop (delivered at its next turn)."""
        return bool(self._queued)

    def output(self, text: str, stream: str = "stdout", level: str | None = None) -> int | None:
        """Add an output line; its seq (None once the run is closed). Raises
        OutputLimitExceeded past the output limit."""
        size = len(text.encode("utf-8", errors="replace")) + 1
        with self._lock:
            if self._closed:
                return None
            if self._output_bytes + size > self.limits.output_bytes:
                raise OutputLimitExceeded(self.limits.describe("output_bytes"))
            self._output_bytes += size
            self._queue_line(stream, text, level)
            return self._seq

    def system(self, text: str) -> None:
        """An output line from the platform itself (not counted against the limit)."""
        with self._lock:
            if self._closed:
                return
            self._queue_line("system", text, None)

    def _queue_line(self, stream: str, text: str, level: str | None) -> None:
        """(Under the lock.) Lines reach the loop in order, in batches: one
        wake-up of the loop per batch rather than per line."""
        self._seq += 1
        self._queued.append(OutputLine(self._seq, stream, text, time.time(), level))
        if len(self._queued) == 1:
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            lines, self._queued = self._queued, []
        for line in lines:
            self._emit(line)

    def record_call(
        self,
        name: str,
        target: str | None,
        latency_s: float,
        ok: bool,
        line: int | None = None,
        request: Any = None,
        answer: Any = None,
    ) -> None:
        """A device call with its latency (and the script line that made it):
        run metrics, and a "call" output line; in a debug run also its
        request and answer, as text.

        The metrics entry names its output line (``seq``) and, when the run's
        gate recorded the call, its place in the recording (``recorded``): what
        the console expands a call line to."""
        take = getattr(self.gate, "take_recorded", None)
        entry = {
            "name": name,
            "target": target,
            "latency_s": round(latency_s, 6),
            "ok": ok,
            "line": line,
            "at": round(time.time() - latency_s, 6),
            "seq": None,
            "recorded": take() if take is not None else None,
        }
        self.device_calls.append(entry)
        if self.debug_calls is not None:
            self.debug_calls.append(
                {
                    "name": name,
                    "target": target,
                    "latency_s": round(latency_s, 6),
                    "ok": ok,
                    "request": _payload_text(request),
                    "answer": _payload_text(answer),
                }
            )
        where = f" {target}" if target else ""
        state = "ok" if ok else "failed"
        try:
            entry["seq"] = self.output(
                f"{name}{where}: {latency_s * 1000:.1f} ms, {state}", stream="call"
            )
        except OutputLimitExceeded:
            pass  # the script's own next output reports the limit

    def add_listener(
        self,
        source: ListenerSource,
        callback: LuaCallback,
        parallel: int = 1,
        name: str = "",
    ) -> None:
        """Call `callback(event)` for every event of `source`, `parallel` at most at once.

        The run keeps going after its main chunk while a listener exists."""
        if not isinstance(callback, LuaCallback):
            raise TypeError("callback must be the LuaCallback a binding received")
        self._start_listener(source, callback, max(1, int(parallel or 1)), name)

    def listener_name(self) -> str | None:
        """A name for the next listener this run registers, the same in every
        run of one deployment (the n-th listener of the script gets the n-th
        name), so a replacement run takes over its predecessor's consumers.
        None for a run that is not a deployed listener."""
        if not self._listener_key:
            return None
        self._listeners_named += 1
        return f"{self._listener_key}-{self._listeners_named}"

    def device_call_id(self) -> str | None:
        """The id of the run's next device call, the same in every attempt of
        a run that may be run again (its n-th call gets the n-th id), so an
        attempt gets the answers of the calls an earlier one made. None for a
        run that is not run again."""
        if not self._replay_key:
            return None
        with self._lock:  # sync bindings call from the Lua thread
            self._device_calls_named += 1
            return f"{self._replay_key}:{self._device_calls_named}"

    def close(self) -> None:
        """The run is over: further output is dropped."""
        with self._lock:
            self._closed = True
