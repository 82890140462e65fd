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
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from oktoscripts.lua.bytecode import strip_lua51
from oktoscripts.lua.instrument import budget_names, instrument
from oktoscripts.lua.values import Converter, to_lua, to_lua_plain

log = logging.getLogger(__name__)

RUNTIMES = {"lua51": "lupa.lua51", "luajit": "lupa.luajit21"}

# Instructions between two limit checks: rare enough to cost little, often
# enough to stop a loop within a fraction of a millisecond.
HOOK_EVERY = 10_000


@cache
def _engine_source() -> bytes:
    return (Path(__file__).with_name("sandbox.lua")).read_bytes()


@cache
def _engine_bytecode(runtime: str) -> bytes:
    """sandbox.lua compiled once per process and kind of runtime: loading
    bytecode we made ourselves is several times faster than compiling. (Scripts
    can never load bytecode.)"""
    lua = lupa_module(runtime).LuaRuntime(encoding=None, register_eval=False)
    # Without debug information (see bytecode.py): LuaJIT's dump strips it itself.
    dump = lua.eval(
        "function(src) return string.dump(assert(loadstring(src, '=(engine)')), true) end"
    )
    compiled = dump(_engine_source())
    return compiled if runtime == "luajit" else strip_lua51(compiled)


def lupa_module(runtime: str) -> Any:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown Lua runtime {runtime!r} (use one of {', '.join(RUNTIMES)})")
    return importlib.import_module(RUNTIMES[runtime])


def _refuse_attributes(obj: Any, attr: Any, is_setting: bool) -> Any:
    raise AttributeError("no attribute access from Lua")


def _guarded(name: str, fn: Callable) -> Callable:
    """A host callable that never lets a Python exception (an object) into Lua."""

    def guarded(*args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:
            log.exception("engine host function %s failed", name)
            return (2, f"internal error in {name}".encode()) if name == "call" else None

    return guarded


@dataclass
class Step:
    """What one resume of a driver coroutine gave."""

    kind: str  # "done" | "wait" | "error" | "limit" | "syntax" (error: the RunOutcome)
    values: list | None = None  # done: JSON-ready return values
    token: int | None = None  # wait: pending binding call
    line: int | None = None  # wait: line of the binding call
    error: Any = None  # error: JSON-ready error value
    frames: list[dict] | None = None  # error: script frames, innermost first


def _instrumenter() -> Callable[[bytes], bytes]:
    counter, budget = budget_names()

    def rewrite(text: bytes) -> bytes:
        source = text.decode("utf-8", errors="surrogateescape")
        return instrument(source, counter, budget).encode("utf-8", errors="surrogateescape")

    return rewrite


class LuaSandbox:
    def __init__(
        self,
        host: dict[str, Callable],
        *,
        runtime: str,
        memory_bytes: int,
        binding_names: list[str],
    ):
        """`host`: the Python callables the engine chunk calls back: call(index,
        *args), tick(memory_kb, line), trip(reason, line), output(text)."""
        self.lupa = lupa_module(runtime)
        self.memory_bytes = memory_bytes
        self.lua = self.lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_refuse_attributes,
            unpack_returned_tuples=True,
            # Limited once the engine is in place (below): a limit too small
            # for Lua's own start would abort the process instead of failing.
            # 0: tracked but unlimited. The limit is armed by the engine only
            # while script code runs (see arm/disarm in sandbox.lua).
            max_memory=0,
        )
        host = dict(host)
        host["arm"] = self._arm
        host["disarm"] = self._disarm
        if runtime == "luajit":
            host["instrument"] = _instrumenter()
        host_table = self.lua.table_from(
            {name.encode(): _guarded(name, fn) for name, fn in host.items()}
        )
        loader = self.lua.globals()[b"loadstring"]
        chunk = loader(_engine_bytecode(runtime), b"=(engine)")
        self.engine = chunk(host_table, HOOK_EVERY, memory_bytes)
        self.converter = Converter(self.engine[b"type"], self.engine[b"table_id"])
        self.engine[b"bind"](self.lua.table_from([n.encode() for n in binding_names]))
        self._step = self.engine[b"step"]

    def _arm(self) -> None:
        self.lua.set_max_memory(self.memory_bytes, total=True)

    def _disarm(self) -> None:
        self.lua.set_max_memory(0)

    def set_global(self, name: str, value: Any) -> None:
        self.engine[b"set_global"](name.encode(), to_lua(self.lua, value))

    def compile(self, source: str, name: str) -> tuple[Any, str | None]:
        """(function, None) or (None, syntax error message)."""
        out = self.engine[b"compile"](source.encode("utf-8", "surrogateescape"), name.encode())
        fn, err = out if isinstance(out, tuple) else (out, None)
        if fn is None:
            return None, err.decode("utf-8", errors="replace")
        return fn, None

    def start(self, fn: Any) -> Any:
        """A new driver coroutine running fn."""
        return self.engine[b"start"](fn)

    def step(self, co: Any, args: tuple) -> Step:
        """Resume `co` with Python values (converted to Lua here)."""
        lua_args = [to_lua(self.lua, a) for a in args]
        try:
            out = self._step(co, *lua_args)
        finally:
            self._disarm()  # also when the engine itself ran out of memory
        if not isinstance(out, tuple):
            out = (out,)
        kind = out[0]
        if kind == 0:
            packed = out[1]
            n = int(packed[b"n"])
            return Step("done", values=[self.converter.to_json(packed[i]) for i in range(1, n + 1)])
        if kind == 1:
            return Step("wait", token=int(out[1]), line=out[2])
        if kind == 2:
            return Step("error", error=self.error_value(out[1]), frames=self.frames(out[2]))
        return Step("limit")

    def error_value(self, err: Any) -> Any:
        if isinstance(err, bytes):
            return err.decode("utf-8", errors="replace")
        return self.converter.to_json(err)

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

    def to_python(self, value: Any, wrap_function: Any) -> Any:
        return self.converter.to_python(value, wrap_function)

    def lua_values(self, values: tuple) -> tuple:
        """Binding results as Lua values (tables built in this runtime)."""
        return tuple(to_lua(self.lua, v) for v in values)

    def memory_used(self) -> int:
        return self.lua.get_memory_used(total=True)


__all__ = ["LuaSandbox", "Step", "HOOK_EVERY", "RUNTIMES", "lupa_module", "to_lua_plain"]
