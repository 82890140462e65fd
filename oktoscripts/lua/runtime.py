"""A fresh, sandboxed lupa runtime for one run.

The runtime is created with nothing of Python registered (no `python.eval`,
no builtins, an attribute filter that refuses everything) and strings kept as
bytes, so that every value crossing the boundary is converted by us. The
engine chunk (sandbox.lua) then builds the script's environment and returns
the functions the driver uses; the Python callables it needs are captured in
its locals and never reach the script.

Every method here runs Lua, so it is called on the Lua thread of the run,
never on the asyncio loop.
"""

from __future__ import annotations

import importlib
import logging
import weakref
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

from oktoscripts.lua.bytecode import strip_lua51
from oktoscripts.lua.debuglines import line_checks
from oktoscripts.lua.instrument import budget_names, instrument_with_fallback
from oktoscripts.lua.values import (
    PLAIN_TYPES,
    Budget,
    Converter,
    OverBudget,
    lua_size,
    plain_to_json,
    plain_to_python,
    to_lua,
    to_lua_plain,
)

log = logging.getLogger(__name__)

RUNTIMES = {"lua51": "lupa.lua51", "luajit": "lupa.luajit21"}

# What a run gets when it names no runtime. LuaJIT 2.1 (Lua 5.1 semantics):
# several times faster than PUC Lua 5.1, and without its sparse string hash,
# which makes building many long, nearly equal strings quadratic (the
# README's "Lua engine" section has the measurements).
DEFAULT_RUNTIME = "luajit"

# Instructions (Lua 5.1) before the first limit check of a run; the engine
# spaces the next ones by time (see "the limit checks" in sandbox.lua).
HOOK_EVERY = 10_000

# CPU seconds between two questions to the host (LuaRun._lua_tick, a call
# into Python) while Lua runs: how soon a cancellation or a passed deadline
# stops a busy script.
ASK_EVERY_S = 0.002
# The least and most instructions (Lua 5.1) or loop iterations and calls
# (LuaJIT) between two limit checks. The most bounds how late a check comes
# when a fast loop turns slow (each iteration a long C call, say): 50,000
# iterations of 10 us are half a second.
CHECK_RANGE = {"lua51": (1_000, 100_000), "luajit": (1_000, 50_000)}


@cache
def _engine_bytecode(runtime: str, file: str = "sandbox.lua") -> bytes:
    """An engine chunk (sandbox.lua, sandbox_more.lua) compiled once per
    process and kind of runtime: loading bytecode we made ourselves is several
    times faster than compiling. (Scripts can never load bytecode.)"""
    lua = lupa_module(runtime).LuaRuntime(encoding=None, register_eval=False)
    # Without debug information (see bytecode.py): LuaJIT's dump strips it itself.
    dump = lua.eval(
        "function(src) return string.dump(assert(loadstring(src, '=(engine)')), true) end"
    )
    compiled = dump(_for_runtime(Path(__file__).with_name(file).read_bytes(), runtime))
    return compiled if runtime == "luajit" else strip_lua51(compiled)


def _for_runtime(source: bytes, runtime: str) -> bytes:
    """The engine's source without the other runtime's lines: those between
    "--{{ lua51" (or "--{{ luajit") and "--}}" are blanked, so that line
    numbers stay."""
    other = b"--{{ luajit" if runtime == "lua51" else b"--{{ lua51"
    lines = source.split(b"\n")
    skipping = False
    for i, line in enumerate(lines):
        marker = line.strip()
        if marker == other:
            skipping = True
        if skipping or marker.startswith((b"--{{", b"--}}")):
            lines[i] = b""
        if marker == b"--}}":
            skipping = False
    return b"\n".join(lines)


# What the engine calls the first time a script uses one of the rarely used
# functions (see sandbox.lua).
_MORE = {runtime: partial(_engine_bytecode, runtime, "sandbox_more.lua") for runtime in RUNTIMES}


# Loads the engine bytecode (its first argument) and runs it with the other
# arguments. lupa holds the GIL while it loads a chunk but not while Lua runs:
# loaded by Lua instead, the engine does not hold up the event loop and the
# other Lua threads while it loads.
_BOOTSTRAP = b"""
local engine = loadstring((...), "=(engine)")(select(2, ...))
return engine.begin, engine.step, engine.type, engine.table_id, engine.keep,
  engine.release, engine.start_kept, engine.debug
"""


@cache
def _bootstrap_bytecode(runtime: str) -> bytes:
    lua = lupa_module(runtime).LuaRuntime(encoding=None, register_eval=False)
    dump = lua.eval("function(src) return string.dump(assert(loadstring(src)), true) end")
    compiled = dump(_BOOTSTRAP)
    return compiled if runtime == "luajit" else strip_lua51(compiled)


@cache  # (asked several times per run: importlib's lookup is not free)
def lupa_module(runtime: str) -> Any:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown Lua runtime {runtime!r} (use one of {', '.join(RUNTIMES)})")
    return importlib.import_module(RUNTIMES[runtime])


def _refuse_attributes(obj: Any, attr: Any, is_setting: bool) -> Any:
    raise AttributeError("no attribute access from Lua")


class Step:
    """What one resume of a driver coroutine gave."""

    __slots__ = ("kind", "values", "token", "line", "error", "frames", "co")

    def __init__(
        self,
        kind: str,  # "done" | "wait" | "error" | "limit" | "syntax" (error: the RunOutcome)
        values: list | None = None,  # done: JSON-ready return values
        token: int | None = None,  # wait: pending binding call
        line: int | None = None,  # wait: line of the binding call
        error: Any = None,  # error: JSON-ready error value
        frames: list[dict] | None = None,  # error: script frames, innermost first
        co: int | None = None,  # begin: the number of the main chunk's coroutine
    ) -> None:
        self.kind = kind
        self.values = values
        self.token = token
        self.line = line
        self.error = error
        self.frames = frames
        self.co = co


def debugger_bytecode(runtime: str) -> bytes:
    """debugger.lua, for a debug run's runtime."""
    return _engine_bytecode(runtime, "debugger.lua")


def debug_rewrite(runtime: str, text: bytes) -> tuple:
    """A debug run's main chunk with the debugger's line checks (debuglines.py),
    and its number of lines: under LuaJIT also instrumented (its two forms,
    the armed lines and the line function two more upvalues), under Lua 5.1
    ``local B, D = ...; return function(...) <source> end``."""
    counter, budget, entry = budget_names()
    armed, line_fn = "_B" + counter[2:], "_D" + counter[2:]
    source = text.decode("utf-8", errors="surrogateescape")
    last_line = source.count("\n") + 1
    source = line_checks(source, armed, line_fn)
    if runtime == "luajit":
        forms = instrument_with_fallback(source, counter, budget, entry, f"{armed}, {line_fn}")
        return (*(form.encode("utf-8", errors="surrogateescape") for form in forms), last_line)
    wrapped = f"local {armed}, {line_fn} = ...; return function(...) {source}\nend"
    return wrapped.encode("utf-8", errors="surrogateescape"), last_line


def _instrumenter() -> Callable[[bytes], tuple[bytes, bytes]]:
    names = budget_names()

    def rewrite(text: bytes) -> tuple[bytes, bytes]:
        source = text.decode("utf-8", errors="surrogateescape")
        forms = instrument_with_fallback(source, *names)
        return tuple(form.encode("utf-8", errors="surrogateescape") for form in forms)

    return rewrite


class LuaSandbox:
    # Thousands may be alive at once in a worker.
    __slots__ = (
        "lupa",
        "memory_bytes",
        "result_bytes",
        "lua",
        "_converter",
        "_begin",
        "_step",
        "_lua_type",
        "_table_id",
        "_keep",
        "_release",
        "_start_kept",
        "_debug",
        "__weakref__",  # for the engine's callbacks (weakly)
    )

    def __init__(
        self,
        call: Callable[..., tuple],
        tick: Callable[[float, int | None, int], tuple],
        trip: Callable[[bytes, int | None], None],
        output: Callable[[bytes], int | None],
        *,
        runtime: str,
        memory_bytes: int,
        result_bytes: int,
        binding_names: tuple[bytes, ...],
        debug: Callable[..., Any] | None = None,
    ):
        """A fresh runtime with the engine loaded. The Python callables the
        engine chunk calls back (none may raise: lupa would hand the exception
        to the script): call(index, *args) (index from 1 into
        `binding_names`; it must lift the memory limit, `disarm()`, before
        anything else), tick(memory_kb, line, amount) -> (reason code or
        None, instructions left), trip(reason, line), output(text).

        Values handed to Lua, and what converting Lua values builds in
        Python, count against `memory_bytes` with the Lua heap; a returned
        value's JSON against `result_bytes` too. Past either, a conversion
        raises OverBudget (or, for a step's values, gives a "limit" Step
        naming the limit)."""
        self.lupa = lupa_module(runtime)
        self.memory_bytes = memory_bytes
        self.result_bytes = result_bytes
        self.lua = self.lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_refuse_attributes,
            unpack_returned_tuples=True,
            # 0: tracked but unlimited. The limit is armed by the engine only
            # while script code runs (see arm/disarm in sandbox.lua): a limit
            # hit outside Lua's error protection would abort the process.
            max_memory=0,
        )
        self._converter: Converter | None = None
        # Collector stopped until the script starts (engine.begin restarts it).
        self.lua.nogc().__enter__()
        # One call sets the engine up: the chunk gets the host callables, the
        # limits and the binding names as arguments, and the driver's functions
        # come back as values (looked up now: lupa's table indexing is
        # unreliable inside a callback from a coroutine, where conversions run).
        (
            self._begin,
            self._step,
            self._lua_type,
            self._table_id,
            self._keep,
            self._release,
            self._start_kept,
            self._debug,
        ) = self.lua.execute(
            _bootstrap_bytecode(runtime),
            _engine_bytecode(runtime),
            call,
            tick,
            trip,
            output,
            weakly(self._limit),
            _MORE[runtime],
            _instrumenter() if runtime == "luajit" else None,
            debug,
            HOOK_EVERY,
            memory_bytes,
            ASK_EVERY_S,
            *CHECK_RANGE[runtime],
            *binding_names,
        )

    def _limit(self, armed: bool) -> None:
        """(Called by the engine.) Arm the memory limit, or lift it."""
        try:
            self.lua.set_max_memory(self.memory_bytes if armed else 0, total=armed)
        except Exception:  # never let a Python exception into Lua
            log.exception("setting the memory limit failed")

    def disarm(self) -> None:
        """Lift the memory limit (host_call does it on entry)."""
        self._limit(False)

    @property
    def converter(self) -> Converter:
        """Made on first need: most runs never convert a table."""
        if self._converter is None:
            self._converter = Converter(self._lua_type, self._table_id)
        return self._converter

    def memory_room(self) -> int:
        """Bytes the memory limit leaves free."""
        return self.memory_bytes - self.memory_used()

    def _fits(self, values: Any) -> None:
        """Raise OverBudget unless Lua has room for `values` (from Python)."""
        room = self.memory_room()
        if lua_size(values, room) > room:
            raise OverBudget("memory_bytes")

    def begin(self, source: str, name: str, args: dict) -> Step:
        """Compile the main chunk and take its first step (a "syntax" Step,
        with the message as error, if it does not compile)."""
        if args:
            self._fits(args)
        lua_args = to_lua(self.lua, args) if args else None
        try:
            out = self._begin(source.encode("utf-8", "surrogateescape"), name.encode(), lua_args)
        finally:
            self.disarm()  # also when the engine itself ran out of memory
        if out[0] is None:
            return Step("syntax", error=out[1].decode("utf-8", errors="replace"))
        step = self._read_step(out, 1)
        step.co = out[0]
        return step

    def keep(self, fn: Any) -> int:
        """Keep a Lua function on the Lua side; its number for `start`.
        Drop `fn` right after: the lupa object may belong to the running
        coroutine's lua_State, which does not outlive that coroutine."""
        return self._keep(fn)

    def release(self, number: int) -> None:
        """Forget a kept function (it was not made a listener)."""
        self._release(number)

    def start(self, number: int) -> int:
        """A new driver coroutine calling kept function `number`."""
        return self._start_kept(number)

    def step(self, co: Any, args: tuple) -> Step:
        """Resume `co` with Python values (converted to Lua here)."""
        self._fits(args)
        lua_args = [_plain_or_lua(self.lua, a) for a in args]
        try:
            out = self._step(co, *lua_args)
        finally:
            self.disarm()  # also when the engine itself ran out of memory
        return self._read_step(out if isinstance(out, tuple) else (out,), 0)

    def _read_step(self, out: tuple, at: int) -> Step:
        kind = out[at]
        if kind == 1:
            return Step("wait", token=int(out[at + 1]), line=out[at + 2])
        if kind not in (0, 2):
            return Step("limit")
        budget = Budget(self.memory_room(), self.result_bytes)
        try:
            if kind == 0:
                n = int(out[at + 1])
                values = out[at + 2 : at + 2 + n]
                return Step("done", values=[self._json(v, budget) for v in values])
            error = self._json(out[at + 1], budget)
        except OverBudget as exc:
            return Step("limit", error=exc.limit)
        return Step("error", error=error, frames=self.frames(out[at + 2]))

    def _json(self, value: Any, budget: Budget) -> Any:
        if isinstance(value, bytes):
            budget.spend(len(value), len(value))
        if isinstance(value, PLAIN_TYPES):
            return plain_to_json(value)
        return self.converter.to_json(value, budget)

    def frames(self, table: Any) -> list[dict]:
        frames = []
        for _, frame in sorted(table.items(), key=lambda kv: kv[0]):
            source = frame[b"source"].decode("utf-8", errors="replace")
            frames.append(
                {
                    "source": source[1:] if source[:1] in ("=", "@") else source,
                    "line": frame[b"line"],
                    "function": frame[b"name"].decode("utf-8", errors="replace"),
                }
            )
        return frames

    def arguments(self, values: tuple, wrap_function: Any) -> tuple:
        """A binding call's arguments as Python values."""
        budget = Budget(self.memory_room())
        return tuple([self._argument(v, wrap_function, budget) for v in values])

    def _argument(self, value: Any, wrap_function: Any, budget: Budget) -> Any:
        if isinstance(value, bytes):
            budget.spend(len(value))
        if isinstance(value, PLAIN_TYPES):
            return plain_to_python(value)
        return self.converter.to_python(value, wrap_function, budget)

    def lua_values(self, values: tuple) -> tuple:
        """Binding results as Lua values (tables built in this runtime)."""
        self._fits(values)
        return tuple(to_lua(self.lua, v) for v in values)

    def debug_request(self, op: str, *args: Any) -> Any:
        """Ask the debugger of a debug run (debugger.lua's ops); the answer as JSON values."""
        if self._debug is None:  # (the engine gives it to debug runs only)
            return {"error": "not a debug run"}
        lua_args = [a.encode() if isinstance(a, str) else a for a in args]
        answer = self._debug(op.encode(), *lua_args)
        return self.converter.to_json(answer, Budget(1 << 30, 1 << 30))

    def memory_used(self) -> int:
        return self.lua.get_memory_used(total=True)

    def close(self) -> None:
        """The run is over: drop the references to the engine, so that the
        runtime goes (lupa closes it) when this sandbox does. (Collecting the
        heap first, without the GIL, cost more CPU than it saved the
        teardown: 25 us more for a trivial run, 40 us for one that compiled
        traces; lupa's teardown is about as long either way.)"""
        self._begin = self._step = self._keep = self._release = self._start_kept = None
        self._lua_type = self._table_id = self._debug = None
        self._converter = None


def weakly(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` as a callable that does not keep its object alive (a no-op
    returning None once the object is gone). For callbacks held by what the
    object holds: a cycle would leave the object to the cyclic collector,
    late. (And what a Lua runtime holds is invisible to reference counting: a
    sandbox whose runtime held the sandbox could only be freed by a
    collection.) A weak reference to the object and the class's function,
    not a WeakMethod: a run makes four of these, and a WeakMethod with its
    closure took 750 bytes each (a worker holds thousands of runs)."""
    ref = weakref.ref(method.__self__)
    func = method.__func__

    def call(*args: Any) -> Any:
        obj = ref()
        return None if obj is None else func(obj, *args)

    return call


def _plain_or_lua(runtime: Any, value: Any) -> Any:
    """Resume values: plain ones as they are, others converted."""
    if value is None or isinstance(value, bool | int | float | bytes):
        return value
    return to_lua(runtime, value)


__all__ = [
    "DEFAULT_RUNTIME",
    "LuaSandbox",
    "Step",
    "HOOK_EVERY",
    "RUNTIMES",
    "lupa_module",
    "to_lua_plain",
]
