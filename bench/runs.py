"""Run overhead and concurrency of one worker process, through the real queue.

    .venv/bin/python -m bench.runs [--quick] [--only latency|throughput|sleeps|cancel]

Starts (unless NATS_URL names one) the embedded nats-server, uses a fresh
SQLite database (or DATABASE_URL), starts one ``manage.py worker`` process and
measures, from this process (the submitter):

- submit-to-result-stored latency of a trivial script, one run at a time
  (the final status is published only after the outcome is stored);
- trivial runs per second one worker process completes;
- 2,000 runs each calling ``sleep(1)`` held by the worker at once: wall time
  until all are stored, and the worker's peak RSS;
- time from cancel_run to the stored "cancelled" of a sleeping run.

Targets (issue 3): p50 latency <= 10 ms, >= 300 runs/s on 2 cores, 2,000
sleeps done within 3 s, worker peak RSS <= 300 MB, cancel <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.services import embedded_services

ROOT = Path(__file__).resolve().parent.parent


def setup_environment(tmp: Path) -> None:
    os.environ["OKTOSCRIPTS_BUS_PREFIX"] = f"bench{secrets.token_hex(3)}"
    os.environ["OKTOSCRIPTS_DATA_DIR"] = str(tmp / "var")
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oktoscripts.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def start_worker(tmp: Path, concurrency: int) -> subprocess.Popen:
    log = tmp / "worker.log"
    profile = os.environ.get("BENCH_PROFILE")  # a path: profile the worker into it
    python = [sys.executable, "-m", "cProfile", "-o", profile] if profile else [sys.executable]
    proc = subprocess.Popen(
        [*python, str(ROOT / "manage.py"), "worker", "--concurrency", str(concurrency)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 30
    while "ready" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> bool:
    """Start the process's VmHWM again from its current RSS (Linux 4.0+), so
    that the peak of one measurement can be told from earlier ones."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The worker's peak (VmHWM) or current (VmRSS) resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Finals:
    """Final statuses of runs as the worker publishes them (after storing)."""

    def __init__(self) -> None:
        self.waiters: dict[str, asyncio.Future] = {}
        self.statuses: dict[str, str] = {}

    async def subscribe(self, nc) -> None:  # noqa: ANN001
        from oktoscripts.runs import live
        from oktoscripts.runs.models import Run

        async def on_status(message: dict) -> None:
            if message["status"] in Run.FINAL:
                self.statuses[message["run_id"]] = message["status"]
                waiter = self.waiters.get(message["run_id"])
                if waiter and not waiter.done():
                    waiter.set_result(message["status"])

        await live.subscribe_statuses(nc, on_status)

    def expect(self, run_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiters[run_id] = future
        return future


async def queue_many(nc, code: str, count: int) -> list[str]:  # noqa: ANN001
    """Store ``count`` queued runs in one bulk insert and publish their requests."""
    import json

    from asgiref.sync import sync_to_async

    from oktoscripts.bus import subjects
    from oktoscripts.runs.models import Run

    runs = [Run(script_name="bench.lua", code=code, started_by="api") for _ in range(count)]
    await sync_to_async(Run.objects.bulk_create)(runs, batch_size=500)
    js = nc.jetstream()
    acks = [
        js.publish(subjects.run_queue(), json.dumps({"run_id": str(r.id)}).encode()) for r in runs
    ]
    for start in range(0, len(acks), 500):
        await asyncio.gather(*acks[start : start + 500])
    return [str(r.id) for r in runs]


async def latency(nc, finals: Finals, samples: int) -> list[float]:  # noqa: ANN001
    import uuid

    from oktoscripts.runs.submit import asubmit_run

    times = []
    for _ in range(samples):
        run_id = str(uuid.uuid4())
        done = finals.expect(run_id)
        started = time.perf_counter()
        await asubmit_run("return 1", run_id=run_id, nc=nc)
        await asyncio.wait_for(done, 30)
        times.append(time.perf_counter() - started)
    return times


async def spread(ids: list[str], since: float) -> str:
    """When the runs started, ended in Lua (start + the duration in their
    metrics) and were stored, seconds after ``since`` (min/median/max)."""
    from asgiref.sync import sync_to_async

    from oktoscripts.runs.models import Run

    rows = await sync_to_async(list)(
        Run.objects.filter(pk__in=ids).values_list("started", "finished", "metrics")
    )

    def summary(values: list[float]) -> str:
        if not values:
            return "-"
        values.sort()
        return "/".join(f"{v:.2f}" for v in (values[0], values[len(values) // 2], values[-1]))

    started = summary([r[0].timestamp() - since for r in rows if r[0]])
    ended = summary(
        [
            r[0].timestamp() + r[2]["duration_s"] - since
            for r in rows
            if r[0] and r[2] and "duration_s" in r[2]
        ]
    )
    finished = summary([r[1].timestamp() - since for r in rows if r[1]])
    return f"started {started} s, ended {ended} s, stored {finished} s (min/median/max)"


async def throughput(nc, finals: Finals, count: int, code: str) -> float:  # noqa: ANN001
    started = time.perf_counter()
    since = time.time()
    ids = await queue_many(nc, code, count)
    queued = time.perf_counter() - started
    waiters = [finals.expect(run_id) for run_id in ids]
    # Runs may finish before we registered: count those already seen.
    for run_id, waiter in zip(ids, waiters, strict=True):
        if run_id in finals.statuses and not waiter.done():
            waiter.set_result(finals.statuses[run_id])
    statuses = await asyncio.wait_for(asyncio.gather(*waiters), 120)
    elapsed = time.perf_counter() - started
    print(f"  (all queued after {queued:.2f} s; {await spread(ids, since)})")
    bad = [s for s in statuses if s != "succeeded"]
    if bad:
        print(f"  !! {len(bad)} runs did not succeed: {sorted(set(bad))}")
    return elapsed


async def cancel_latency(nc, finals: Finals, samples: int) -> list[float]:  # noqa: ANN001
    import uuid

    from oktoscripts.bus import subjects
    from oktoscripts.runs.submit import acancel_run, asubmit_run

    times = []
    for _ in range(samples):
        run_id = str(uuid.uuid4())
        output = await nc.subscribe(subjects.run_output(run_id))
        done = finals.expect(run_id)
        await asubmit_run("print('sleeping')\nsleep(30)", run_id=run_id, nc=nc)
        await output.next_msg(timeout=30)
        await output.unsubscribe()
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await acancel_run(run_id, nc=nc)
        status = await asyncio.wait_for(done, 10)
        times.append(time.perf_counter() - started)
        assert status == "cancelled", status
    return times


def ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f} ms"


async def measure(tmp: Path, quick: bool, only: str | None) -> None:
    from oktoscripts.bus.connection import connect
    from oktoscripts.bus.streams import delete_prefixed
    from oktoscripts.bus.subjects import prefix

    worker = start_worker(tmp, concurrency=2500)
    nc = await connect("bench")
    finals = Finals()
    await finals.subscribe(nc)
    try:
        await latency(nc, finals, 20)  # warm up
        if only in (None, "latency"):
            await measure_latency(nc, finals, quick)
        if only in (None, "throughput"):
            await measure_throughput(nc, finals, worker.pid, quick)
        if only in (None, "sleeps"):
            await measure_sleeps(nc, finals, worker.pid)
        if only in (None, "cancel"):
            await measure_cancel(nc, finals, quick)
        print(
            f"(cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, database: "
            f"{os.environ['DATABASE_URL'].split(':', 1)[0]})"
        )
    finally:
        worker.terminate()
        worker.wait(30)
        await delete_prefixed(nc.jetstream(), prefix())
        await nc.close()


async def measure_latency(nc, finals: Finals, quick: bool) -> None:  # noqa: ANN001
    times = await latency(nc, finals, 100 if quick else 300)
    print(
        f"submit -> result stored, trivial script, one at a time ({len(times)} runs): "
        f"p50 {ms(times, 0.5)}, p90 {ms(times, 0.9)}, p99 {ms(times, 0.99)}  "
        f"[target p50 <= 10 ms]"
    )


async def measure_throughput(nc, finals: Finals, pid: int, quick: bool) -> None:  # noqa: ANN001
    count = 1000 if quick else 3000
    cpu = cpu_seconds(pid)
    elapsed = await throughput(nc, finals, count, "return 1")
    cpu = cpu_seconds(pid) - cpu
    print(
        f"trivial runs through one worker process: {count} in {elapsed:.2f} s = "
        f"{count / elapsed:.0f} runs/s  [target >= 300/s on 2 cores]; worker CPU "
        f"{cpu / count * 1000:.2f} ms per run"
    )


async def measure_sleeps(nc, finals: Finals, pid: int) -> None:  # noqa: ANN001
    peak_before, before = rss_mb(pid), rss_mb(pid, "VmRSS")
    phase_peak = reset_peak_rss(pid)
    cpu = cpu_seconds(pid)
    elapsed = await throughput(nc, finals, 2000, "sleep(1)\nreturn 1")
    cpu = cpu_seconds(pid) - cpu
    print(
        f"2000 runs each calling sleep(1), one worker process: all stored in "
        f"{elapsed:.2f} s wall  [target <= 3 s]; worker CPU {cpu:.2f} s"
    )
    during = f"{rss_mb(pid):.0f} MB while holding these runs, " if phase_peak else ""
    print(
        f"worker peak RSS: {max(peak_before, rss_mb(pid)):.0f} MB  [target <= 300 MB] "
        f"({during}{before:.0f} MB before them, peak before them {peak_before:.0f} MB)"
    )


async def measure_cancel(nc, finals: Finals, quick: bool) -> None:  # noqa: ANN001
    times = await cancel_latency(nc, finals, 10 if quick else 30)
    print(
        f"cancel_run -> 'cancelled' stored, run sleeping ({len(times)} runs): "
        f"p50 {ms(times, 0.5)}, max {max(times) * 1000:.1f} ms, mean "
        f"{statistics.mean(times) * 1000:.1f} ms  [target <= 100 ms]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument(
        "--only",
        choices=["latency", "throughput", "sleeps", "cancel"],
        help="one measurement only (e.g. to profile the worker during it)",
    )
    options = parser.parse_args()
    with embedded_services("bench-runs-", setup_environment, mongo=False, migrate=True) as (tmp, _):
        asyncio.run(measure(tmp, options.quick, options.only))


if __name__ == "__main__":
    main()
