"""Engine overhead counted in instructions: bench.engine's rows, without the noise.

    .venv/bin/python -m bench.instructions [--only ROW ...] [--runs N] [--runtime luajit|lua51]

bench.engine times each workload in CPU seconds, which other processes on a
shared 2-core machine, and the machine itself, move by tens of percent. This
counts the instructions the process executes instead, under valgrind's
callgrind (Debian's valgrind package), which no other load changes: for each
row, a process that runs the workload once and one that runs it 1 + N times
(bare lupa, then through a whole LuaRun, as bench.engine does), and the
difference divided by N is the cost of one more run, start-up and imports
left out. What is left to chance is LuaJIT's: where its traces begin depends
on addresses, so a compiled workload's count still moves by a few percent
from one runtime to the next; N runs average that.

Instructions are not time: the checks the engine writes into a script are
a decrement and a compare, which retire several to a cycle, so a compiled
loop's count grows far more than its CPU time (the "loop 10M" row: +56%
instructions, +4% to +16% CPU time in bench.engine). This is for comparing
one version of the engine with another (what a change costs, without the
noise), not for the 15% target, which is about CPU time.

Slow (valgrind runs the code about 50 times slower): a few minutes a row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.engine import SKIPPED, WORKLOADS, time_bare, time_engine

ROOT = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def child(mode: str, runtime: str, row: str, times: int) -> None:
    """(In the process valgrind runs.) `times` runs of the row's workload."""
    from oktoscripts.lua.threads import LuaThreadPool

    code = WORKLOADS[row]

    async def run_all() -> None:
        pool = LuaThreadPool(1)
        for _ in range(times):
            if mode == "engine":
                await time_engine(runtime, code, pool)
            else:
                time_bare(runtime, code)
        pool.shutdown(wait=False)

    asyncio.run(run_all())


def instructions(mode: str, runtime: str, row: str, times: int) -> int:
    """Instructions of a whole process running the workload `times` times."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/out",
            sys.executable,
            "-m",
            "bench.instructions",
            "--child",
            mode,
            runtime,
            row,
            str(times),
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"valgrind failed on {mode} {row}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_run(mode: str, runtime: str, row: str, runs: int) -> float:
    """Instructions of one more run of the row's workload."""
    return (instructions(mode, runtime, row, 1 + runs) - instructions(mode, runtime, row, 1)) / runs


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS), help="these rows only")
    parser.add_argument("--runs", type=int, default=4, help="runs averaged (default 4)")
    parser.add_argument("--runtime", choices=("luajit", "lua51"), default="luajit")
    opts = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    print(f"{opts.runtime}: millions of instructions per run (average of {opts.runs})")
    print(f"  {'workload':<13} {'bare':>9} {'engine':>9}  overhead")
    for row in opts.only or WORKLOADS:
        if (opts.runtime, row) in SKIPPED:
            continue
        bare = per_run("bare", opts.runtime, row, opts.runs)
        engine = per_run("engine", opts.runtime, row, opts.runs)
        print(
            f"  {row:<13} {bare / 1e6:>9.1f} {engine / 1e6:>9.1f}  "
            f"{(engine / bare - 1) * 100:>+7.1f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
