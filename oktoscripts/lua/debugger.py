"""The engine side of debugging a run: DebugSession.

A debug run is a LuaRun given a DebugSession. Its script is rewritten with a
line check before each line's first statement (debuglines.py) and its
runtime gets the debugger (debugger.lua); a normal run has neither.

State machine of a session (``state``):

    configuring --configure()--> running --(breakpoint, step, pause, error)--> paused
    paused --resume(command) of its last paused activation--> running
    any --run ends--> ended

A debug run does not start its script before ``configure()`` (its
breakpoints and options) or ``CONFIGURE_WAIT_S``. Each activation (the main
chunk, each listener callback call) pauses on its own: several may be paused
at once, each known by its number (``activation`` in its "paused" event);
the others go on, or with ``pause_all`` pause at their next line. Requests
name an activation, or apply to the latest paused one. While paused, an
activation holds no Lua thread: it is a coroutine waiting like a device
call; ``stack()``, ``scopes()``, ``variables()`` and ``evaluate()`` each take
one short trip to the Lua thread. Paused time does not count against the
activation's instruction or wall-clock limits; the run's total paused time
is limited by ``pause_limit_s`` (``OKTOSCRIPTS_DEBUG_WALL_SECONDS``, default
30 min), past which the run is cancelled.

Commands for ``resume``: ``continue``, ``over``, ``in``, ``out``, ``cursor``
(with a line). Breakpoints: ``{"line": n, "condition": "lua expr",
"hit": n, "log": "text with {expr}"}`` (all but line optional).

Events (``on_event``, a dict): ``{"event": "paused", "reason" (breakpoint,
step, pause, exception), "line", "message", "frames": [{"name", "line"}],
"calls": [the last device calls], "activation", "kind" (main, listener)}``,
``{"event": "resumed", "activation"}``, ``{"event": "ended", "status"}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oktoscripts import config

log = logging.getLogger(__name__)

CONFIGURE_WAIT_S = 30.0
COMMANDS = ("continue", "over", "in", "out", "cursor")
MAX_BREAKPOINTS = 1000
MAX_EXPRESSION = 2000
PAGE_MAX = 500


def pause_limit_seconds() -> float:
    """OKTOSCRIPTS_DEBUG_WALL_SECONDS: how long a debug run may stay paused in all."""
    value = float(config.value("OKTOSCRIPTS_DEBUG_WALL_SECONDS"))
    if value <= 0:
        raise config.ConfigError("OKTOSCRIPTS_DEBUG_WALL_SECONDS", "must be greater than 0")
    return value


class DebugError(ValueError):
    """A debugger request that cannot be done (bad input, wrong state)."""


@dataclass(frozen=True)
class Breakpoint:
    line: int
    condition: str = ""
    hit: int = 0
    log: str = ""

    @classmethod
    def parse(cls, data: Any) -> Breakpoint:
        if not isinstance(data, dict):
            raise DebugError("a breakpoint is an object with a line")
        line = data.get("line")
        if isinstance(line, bool) or not isinstance(line, int) or line < 1:
            raise DebugError("a breakpoint's line must be a positive integer")
        condition = _text(data.get("condition"), "condition")
        log_message = _text(data.get("log"), "log")
        hit = data.get("hit") or 0
        if isinstance(hit, bool) or not isinstance(hit, int) or hit < 0:
            raise DebugError("a breakpoint's hit count must be a non-negative integer")
        return cls(line, condition, hit, log_message)


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_EXPRESSION:
        raise DebugError(
            f"a breakpoint's {what} must be text of at most {MAX_EXPRESSION} characters"
        )
    return value.strip()


class DebugSession:
    """Breakpoints, options and commands of one debug run (on the run's loop)."""

    def __init__(
        self,
        on_event: Callable[[dict], None] | None = None,
        pause_limit_s: float | None = None,
        configure_wait_s: float = CONFIGURE_WAIT_S,
    ) -> None:
        self.on_event = on_event
        self.pause_limit_s = pause_limit_seconds() if pause_limit_s is None else pause_limit_s
        self.configure_wait_s = configure_wait_s
        self.state = "configuring"
        self.breakpoints: dict[int, Breakpoint] = {}
        self.break_on_error = False
        self.pause_all = False  # one activation pausing pauses the others too
        self._pauses: dict[int, tuple[asyncio.Future, dict]] = {}  # by activation
        self.paused_s = 0.0  # paused time so far
        self.news = True  # changes the Lua side has not fetched yet
        self._pause_wanted = False
        self._configured = asyncio.Event()
        self._run: Any = None  # the LuaRun, set by it

    # ------------------------------------------------------------ commands

    @property
    def paused(self) -> dict | None:
        """The latest pause still waiting for a command ("paused" event), or None."""
        if not self._pauses:
            return None
        return next(reversed(self._pauses.values()))[1]

    def configure(
        self,
        breakpoints: list | None = None,
        break_on_error: bool | None = None,
        pause_all: bool | None = None,
    ) -> None:
        """Set the breakpoints (all of them) and options; the first call lets
        the run start. `pause_all`: when a listener callback's activation
        pauses, the others pause too (else they go on)."""
        if breakpoints is not None:
            if not isinstance(breakpoints, list) or len(breakpoints) > MAX_BREAKPOINTS:
                raise DebugError(f"breakpoints must be a list of at most {MAX_BREAKPOINTS}")
            parsed = [Breakpoint.parse(b) for b in breakpoints]
            self.breakpoints = {b.line: b for b in parsed}
        if break_on_error is not None:
            self.break_on_error = bool(break_on_error)
        if pause_all is not None:
            self.pause_all = bool(pause_all)
        self.news = True
        self._configured.set()
        if self.state == "configuring":
            self.state = "running"

    def pause(self) -> None:
        """Pause at the next line the script runs (within a few ms of CPU)."""
        if self.state in ("running", "configuring", "paused"):
            self._pause_wanted = True
            self.news = True

    def resume(
        self, command: str = "continue", line: int | None = None, activation: int | None = None
    ) -> None:
        """Resume a paused activation (the latest paused one by default)."""
        if command not in COMMANDS:
            raise DebugError(f"unknown command {command!r} (use one of {', '.join(COMMANDS)})")
        if command == "cursor" and (isinstance(line, bool) or not isinstance(line, int)):
            raise DebugError("run to cursor needs a line")
        future = self._pauses[self._which(activation)][0]
        if not future.done():
            future.set_result((command, line))

    def stop(self) -> None:
        if self._run is not None:
            self._run.cancel()

    async def stack(self, activation: int | None = None) -> dict:
        return await self._ask(activation, "stack")

    async def scopes(self, frame: int, activation: int | None = None) -> list:
        return await self._ask(activation, "scopes", _index(frame, "frame"))

    async def variables(
        self, ref: int, start: int = 0, count: int = 100, activation: int | None = None
    ) -> dict:
        count = min(_index(count, "count"), PAGE_MAX)
        return await self._ask(
            activation, "variables", _index(ref, "ref"), _index(start, "start", 0), count
        )

    async def evaluate(
        self, expression: str, frame: int = 1, activation: int | None = None
    ) -> dict:
        if not isinstance(expression, str) or not expression.strip():
            raise DebugError("an expression is needed")
        if len(expression) > MAX_EXPRESSION:
            raise DebugError(f"an expression has at most {MAX_EXPRESSION} characters")
        return await self._ask(activation, "evaluate", expression, _index(frame, "frame"))

    def snapshot(self) -> dict:
        """What a client joining now needs: state, breakpoints, the pause."""
        return {
            "state": self.state,
            "breakpoints": [vars(b) for b in self.breakpoints.values()],
            "break_on_error": self.break_on_error,
            "pause_all": self.pause_all,
            "paused": self.paused,
            "pauses": [info for _, info in self._pauses.values()],
        }

    # ------------------------------------------------------------ engine side

    def attach(self, run: Any) -> None:
        self._run = run

    async def configured(self) -> None:
        try:
            await asyncio.wait_for(self._configured.wait(), self.configure_wait_s)
        except TimeoutError:
            self.state = "running"  # nobody configured it: it runs with no breakpoint

    def sync_values(self) -> tuple:
        """(On the Lua thread.) What debugger.lua's sync reads: nothing when
        nothing changed since it last read."""
        if not self.news:
            return ()
        self.news = False
        wanted, self._pause_wanted = self._pause_wanted, False
        flat: list[Any] = [self.break_on_error, wanted]
        for b in self.breakpoints.values():
            flat += [b.line, b.condition.encode(), b.hit, b.log.encode()]
        return tuple(flat)

    async def wait_command(
        self, activation: int, paused: dict, budget_s: float
    ) -> tuple[str, int | None]:
        """Activation `activation` paused: announce it and wait for its next
        command, at most `budget_s`."""
        future = asyncio.get_running_loop().create_future()
        info = {"event": "paused", **paused}
        self._pauses[activation] = (future, info)
        self.state = "paused"
        self._emit(info)
        if self.pause_all:
            self.pause()  # the other activations stop at their next line
        try:
            return await asyncio.wait_for(asyncio.shield(future), budget_s)
        finally:
            self._pauses.pop(activation, None)
            self._pause_wanted = False  # (pause_all's, or one asked while paused)
            if self.state == "paused":
                self.state = "paused" if self._pauses else "running"
                self._emit({"event": "resumed", "activation": activation})

    def ended(self, status: str) -> None:
        self.state = "ended"
        for future, _ in self._pauses.values():
            if not future.done():
                future.cancel()
        self._emit({"event": "ended", "status": status})

    def _which(self, activation: int | None) -> int:
        if activation is None:
            if not self._pauses:
                raise DebugError("the run is not paused")
            return next(reversed(self._pauses))
        if activation not in self._pauses:
            raise DebugError("that activation is not paused")
        return activation

    async def _ask(self, activation: int | None, op: str, *args: Any) -> Any:
        if self._run is None:
            raise DebugError("the run is not paused")
        answer = await self._run.debug_request(op, self._which(activation), *args)
        if isinstance(answer, dict) and answer.get("error"):
            raise DebugError(str(answer["error"]))
        return answer

    def _emit(self, event: dict) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("debug event handler failed")


def _index(value: Any, what: str, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise DebugError(f"{what} must be an integer of at least {least}")
    return value
