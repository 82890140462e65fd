"""Engine overhead: the same Lua through LuaRun and through bare lupa.

    .venv/bin/python -m bench.engine [--runtime lua51|luajit|both] [--repeat N]

For each workload it times bare lupa (a LuaRuntime, execute, closed) and a
whole LuaRun (fresh sandboxed runtime, limit checks, coroutine driver, result
conversion, runtime freed), N times each, interleaved (in turn first and
second, so that a change in the machine's load falls on both alike). Times are
CPU time of this process (all its threads), so that other processes on a
shared machine skew the comparison less; wall time is printed beside it. The
overhead is the median of the N pairs' overheads, with their range. Target
(issue 3): at most 25% for the sandbox plus hooks. Also prints check_syntax time for 1,000 lines
(target: under 5 ms), the cost of a waiting binding call (the hop from Lua to
the asyncio loop and back), and the CPU per run of many runs at once.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun
from oktoscripts.lua.runtime import lupa_module
from oktoscripts.lua.syntax import check_syntax
from oktoscripts.lua.threads import LuaThreadPool

WORKLOADS = {
    "fib(30)": """
        local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
        return fib(30)
    """,
    "loop 10M": """
        local x = 0
        for i = 1, 10000000 do x = x + i % 7 end
        return x
    """,
    "tables": """
        local t = {}
        for i = 1, 1000000 do t[i] = i * 2 end
        local h = {}
        for i = 1, 200000 do h["k" .. (i % 5000)] = (h["k" .. (i % 5000)] or 0) + t[i] end
        local s = 0
        for _, v in ipairs(t) do s = s + v end
        table.sort(t, function(a, b) return a > b end)
        return s
    """,
    "strings": """
        local parts = {}
        for i = 1, 200000 do parts[#parts + 1] = string.format("%d:%s", i, tostring(i * 3)) end
        local text = table.concat(parts, ",")
        local n = 0
        for a, b in text:gmatch("(%d+):(%d+)") do n = n + #a + #b end
        local u = text:sub(1, 100000):upper():gsub("1", "one")
        return n + #u
    """,
}


def time_bare(runtime: str, code: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a fresh bare runtime running `code`,
    until the runtime is closed."""
    lupa = lupa_module(runtime)
    cpu, wall = time.process_time(), time.perf_counter()
    lua = lupa.LuaRuntime()
    lua.execute(code)
    del lua
    return time.process_time() - cpu, time.perf_counter() - wall


async def time_engine(runtime: str, code: str, pool: LuaThreadPool) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a whole LuaRun of `code`, until its
    runtime is freed (which its Lua thread does after the outcome is out)."""
    limits = Limits(wall_seconds=120, instructions=10**11)
    cpu, wall = time.process_time(), time.perf_counter()
    run = LuaRun(code, name="bench", runtime=runtime, limits=limits, executor=pool)
    outcome = await run.run()
    del run
    await drained(pool)
    elapsed = time.process_time() - cpu, time.perf_counter() - wall
    if outcome.status != "succeeded":
        raise SystemExit(f"engine run failed: {outcome.error}")
    return elapsed


async def drained(pool: LuaThreadPool) -> None:
    """Once every thread of `pool` is done with what it was given so far
    (its jobs run in order, each thread's cleanup right after its job)."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, time.sleep, 0.001) for _ in range(pool.size)))


def overhead_row(pairs: list[tuple[tuple[float, float], tuple[float, float]]]) -> str:
    """Median CPU and wall times of bare and engine, and the median (range) of
    the pairs' CPU overheads."""
    bare_cpu = statistics.median(b[0] for b, _ in pairs)
    engine_cpu = statistics.median(e[0] for _, e in pairs)
    overheads = sorted((e[0] - b[0]) / b[0] * 100 for b, e in pairs)
    overhead = statistics.median(overheads)
    flag = "" if overhead <= 25 else "  (over the 25% target)"
    times = f"{bare_cpu * 1000:>8.1f}ms {engine_cpu * 1000:>8.1f}ms"
    spread = f"[{overheads[0]:+.0f}..{overheads[-1]:+.0f}]"
    walls = (
        f"({statistics.median(b[1] for b, _ in pairs) * 1000:.1f}ms, "
        f"{statistics.median(e[1] for _, e in pairs) * 1000:.1f}ms)"
    )
    return f"{times} {overhead:>8.1f}% {spread:>10}   {walls}{flag}"


async def hop_figure(pool: LuaThreadPool, count: int = 2000) -> tuple[float, float]:
    """(wall, CPU) seconds per waiting-binding call: `sleep(0)` in a loop, each
    one a yield to the driver, a turn of the asyncio loop and a resume."""
    cpu, wall = time.process_time(), time.perf_counter()
    run = LuaRun(f"for i = 1, {count} do sleep(0) end", name="hop", executor=pool)
    outcome = await run.run()
    if outcome.status != "succeeded":
        raise SystemExit(f"hop run failed: {outcome.error}")
    return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


async def per_run_figure(pool: LuaThreadPool, code: str, count: int) -> tuple[float, float]:
    """(wall, CPU) seconds per run of `count` runs of `code` started at once
    (wall: until the last outcome; CPU: until their runtimes are freed too)."""
    cpu, wall = time.process_time(), time.perf_counter()
    runs = [LuaRun(code, name="many", executor=pool) for _ in range(count)]
    outcomes = await asyncio.gather(*(run.run() for run in runs))
    wall = time.perf_counter() - wall
    del runs
    await drained(pool)
    if any(o.status != "succeeded" for o in outcomes):
        raise SystemExit("a run failed")
    return wall / count, (time.process_time() - cpu) / count


def syntax_figure() -> float:
    source = "\n".join(
        f"v[{i}] = math.floor({i} * 2) + (function(a) return a .. 'x' end)('{i}'):len()"
        if i % 3
        else f"if v[{i - 1}] then print(v[{i - 1}], string.format('%d', {i})) end"
        for i in range(1, 1001)
    )
    check_syntax(source)
    best = float("inf")
    for _ in range(50):
        started = time.perf_counter()
        assert check_syntax(source) == []
        best = min(best, time.perf_counter() - started)
    return best


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", default="both", choices=["lua51", "luajit", "both"])
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    runtimes = ["lua51", "luajit"] if opts.runtime == "both" else [opts.runtime]
    pool = LuaThreadPool(workers=1)
    await time_engine("lua51", "return 1", pool)  # imports and first runtime out of the way
    for runtime in runtimes:
        print(f"{runtime}:")
        print(
            f"  {'workload':<10} {'bare cpu':>10} {'engine cpu':>10} {'overhead':>9} "
            f"{'(range)':>10}   (wall: bare, engine)"
        )
        for name, code in WORKLOADS.items():
            pairs = []
            for i in range(opts.repeat):
                if i % 2:
                    engine = await time_engine(runtime, code, pool)
                    bare = time_bare(runtime, code)
                else:
                    bare = time_bare(runtime, code)
                    engine = await time_engine(runtime, code, pool)
                pairs.append((bare, engine))
            print(f"  {name:<10} {overhead_row(pairs)}")
    print(f"check_syntax, 1,000 lines: {syntax_figure() * 1000:.2f} ms (target < 5 ms)")
    # The costs that add up when a worker holds thousands of runs (lua51, a
    # pool of 2 threads as on the 2-core target machine).
    pool2 = LuaThreadPool(workers=2)
    await per_run_figure(pool2, "return 1", 100)
    wall, cpu = await hop_figure(pool2)
    print(
        f"waiting binding call (sleep(0) in a loop): {wall * 1e6:.0f} us wall, "
        f"{cpu * 1e6:.0f} us CPU"
    )
    wall, cpu = await per_run_figure(pool2, "return 1", 2000)
    print(f"trivial run, 2000 at once: {cpu * 1e3:.3f} ms CPU per run ({wall * 1e3:.3f} ms wall)")
    wall, cpu = await per_run_figure(pool2, "sleep(0.5)", 2000)
    print(
        f"run calling sleep(0.5), 2000 at once: {cpu * 1e3:.3f} ms CPU per run, "
        f"all done in {wall * 2000:.2f} s"
    )
    pool2.shutdown(wait=False)
    pool.shutdown(wait=False)


if __name__ == "__main__":
    asyncio.run(main())
