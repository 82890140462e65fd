"""Helpers for engine tests: run a script through LuaRun and look at the outcome.

Test-only bindings (an echo that waits, a listener fed from a queue) are
registered for the duration of a test and removed afterwards, so that they
never show up in the API of other tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

import oktoscripts.bindings  # noqa: F401 - registers the Lua API (sleep, json_encode ...)
from oktoscripts.lua import binding as registry
from oktoscripts.lua.binding import Multi, Param, binding
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun
from oktoscripts.lua.threads import LuaThreadPool


@pytest.fixture(scope="session")
def lua_pool() -> Iterator[LuaThreadPool]:
    pool = LuaThreadPool(workers=2, max_stuck=2)
    yield pool
    pool.shutdown(wait=False)


@pytest.fixture
def run_lua(lua_pool):
    """await run_lua(source, **LuaRun kwargs) -> (outcome, output lines, the LuaRun)."""

    async def run(source: str, **kwargs):
        kwargs.setdefault("name", "script")
        kwargs.setdefault("limits", Limits(wall_seconds=10))
        kwargs.setdefault("executor", lua_pool)
        lua = LuaRun(source, **kwargs)
        outcome = await lua.run()
        return outcome, [line.text for line in lua.output_lines], lua

    return run


async def assert_next_run_is_prompt(run_lua, pool: LuaThreadPool) -> None:
    """A plain run on `pool` right after others: done at once."""
    started = time.monotonic()
    outcome, output, _ = await run_lua("print('next run') return 1", executor=pool)
    assert outcome.status == "succeeded" and output == ["next run"]
    assert time.monotonic() - started < 1.0


class EventQueue:
    """An async iterator of events that a test feeds by hand."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def __aiter__(self) -> AsyncIterator[dict]:
        return self

    async def __anext__(self) -> dict:
        event = await self.queue.get()
        if event is None:
            raise StopAsyncIteration
        return event


@pytest.fixture
def test_bindings() -> Iterator[dict]:
    """Registers test_echo (waits, returns its arguments), test_fail (waits,
    raises) and test_listen(callback, parallel) (events from a queue)."""
    queues: dict[str, EventQueue] = {}

    @binding(
        "test_echo",
        params=[Param("value", "any", optional=True), Param("delay", "number", optional=True)],
        returns="value",
        doc="test",
        category="util",
    )
    async def test_echo(ctx, value, delay):
        await asyncio.sleep(delay or 0)
        return Multi(value, "second")

    @binding("test_fail", params=[], returns="nil", doc="test", category="util")
    async def test_fail(ctx):
        raise RuntimeError("device exploded")

    @binding(
        "test_listen",
        params=[Param("callback", "function"), Param("parallel", "integer", optional=True)],
        returns="nil",
        doc="test",
        category="events",
    )
    def test_listen(ctx, callback, parallel):
        source = EventQueue()
        queues[ctx.run_id] = source
        ctx.add_listener(source, callback, parallel or 1, name="test")

    yield queues
    for name in ("test_echo", "test_fail", "test_listen"):
        registry._REGISTRY.pop(name, None)
