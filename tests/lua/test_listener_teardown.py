"""Ending a busy listening run must leave the process intact.

A listener callback is a Lua function the main chunk passed to a binding,
i.e. from inside the main chunk's coroutine. Lupa ties such an object to that
coroutine's lua_State; once the main chunk has ended and Lua has collected
its coroutine, dropping the object (when the run is cancelled) wrote through
freed memory and crashed the process about one time in five. The engine now
keeps such functions on the Lua side and hands Python only a number.
"""

from __future__ import annotations

import asyncio

import pytest

from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun

# Each event allocates, so Lua's collector runs (and frees the finished main
# chunk's coroutine) while the listener is busy, and reuses that memory.
BUSY_LISTENER = """
local n = 0
test_listen(function(ev)
  n = n + 1
  local junk = {}
  for i = 1, 40 do junk[i] = { i, ev.serial } end
  if n == 150 then print("busy") end
end, 8)
"""


async def _cancel_mid_stream(queues: dict, lua_pool, run_id: str, runtime: str) -> str:
    lua = LuaRun(
        BUSY_LISTENER,
        run_id=run_id,
        runtime=runtime,
        executor=lua_pool,
        limits=Limits(wall_seconds=30),
    )
    task = asyncio.create_task(lua.run())
    while run_id not in queues:
        await asyncio.sleep(0.001)
    for n in range(400):
        queues[run_id].queue.put_nowait({"serial": f"S{n}", "n": n})
    while not lua.output_lines:
        await asyncio.sleep(0.001)
    lua.cancel()  # events still queued and callbacks in flight
    outcome = await asyncio.wait_for(task, 5)
    return outcome.status


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_cancelling_busy_parallel_listeners_repeatedly(test_bindings, lua_pool, runtime):
    statuses = [
        await _cancel_mid_stream(test_bindings, lua_pool, f"teardown-{n}", runtime)
        for n in range(80)
    ]
    assert set(statuses) == {"cancelled"}
    # The process (and the pool) still run scripts.
    lua = LuaRun("return 6 * 7", executor=lua_pool, limits=Limits(wall_seconds=10))
    assert (await lua.run()).result == 42
