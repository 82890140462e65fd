"""What the metrics cost: a worker with and without them, and scraping a busy worker.

    .venv/bin/python -m bench.metrics [--quick] [--rounds N]

Starts (unless NATS_URL names one) the embedded nats-server, uses a fresh
SQLite database (or DATABASE_URL), and measures with bench/runs.py's
workload, one ``manage.py worker`` process at a time:

- trivial runs through one worker with OKTOSCRIPTS_METRICS=off and =on, in
  alternating rounds: runs per second and the worker's CPU per run;
- what the recording calls of one run cost, timed in this process (the
  end-to-end figures are noisy on a shared machine; this one is not);
- GET /metrics of a worker busy with 2,000 sleeping runs and a stream of
  trivial ones: the time to the whole answer.

Targets (issue 19): a scrape of a busy worker <= 20 ms; instrumenting costs
<= 2% on bench/runs.py.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import statistics
import time
from pathlib import Path

from bench.runs import Finals, cpu_seconds, latency, queue_many, setup_environment, start_worker
from bench.services import embedded_services


def free_port() -> int:
    from oktoscripts.launcher.embedded.ports import free_port as free

    return free()


def worker(tmp: Path, metrics: bool, port: int | None = None):  # noqa: ANN201 - a Popen
    os.environ["OKTOSCRIPTS_METRICS"] = "on" if metrics else "off"
    if port is None:
        os.environ.pop("OKTOSCRIPTS_METRICS_PORT", None)
    else:
        os.environ["OKTOSCRIPTS_METRICS_PORT"] = str(port)
    return start_worker(tmp, concurrency=2500)


def stop(proc) -> None:  # noqa: ANN001
    proc.terminate()
    proc.wait(30)


async def drain(finals: Finals, ids: list[str], timeout: float = 180) -> None:
    waiters = [finals.expect(run_id) for run_id in ids]
    for run_id, waiter in zip(ids, waiters, strict=True):
        if run_id in finals.statuses and not waiter.done():
            waiter.set_result(finals.statuses[run_id])
    await asyncio.wait_for(asyncio.gather(*waiters), timeout)


async def one_round(tmp: Path, nc, finals: Finals, metrics: bool, count: int) -> tuple:  # noqa: ANN001
    proc = worker(tmp, metrics)
    try:
        await latency(nc, finals, 20)  # warm up
        cpu = cpu_seconds(proc.pid)
        started = time.perf_counter()
        await drain(finals, await queue_many(nc, "return 1", count))
        elapsed = time.perf_counter() - started
        return count / elapsed, (cpu_seconds(proc.pid) - cpu) / count * 1000
    finally:
        stop(proc)


async def overhead(tmp: Path, nc, finals: Finals, rounds: int, count: int) -> None:  # noqa: ANN001
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for n in range(rounds):
        for metrics in (False, True) if n % 2 == 0 else (True, False):
            rate, cpu_ms = await one_round(tmp, nc, finals, metrics, count)
            rates[metrics].append(rate)
            cpu[metrics].append(cpu_ms)
            print(
                f"  round {n + 1}, metrics {'on ' if metrics else 'off'}: {rate:.0f} runs/s, "
                f"worker CPU {cpu_ms:.3f} ms per run"
            )
    off_rate, on_rate = statistics.median(rates[False]), statistics.median(rates[True])
    off_cpu, on_cpu = statistics.median(cpu[False]), statistics.median(cpu[True])
    print(
        f"trivial runs, one worker, {count} per round, median of {rounds} rounds: "
        f"off {off_rate:.0f} runs/s, on {on_rate:.0f} runs/s "
        f"({(off_rate / on_rate - 1) * 100:+.1f}% time per run); worker CPU per run "
        f"off {off_cpu:.3f} ms, on {on_cpu:.3f} ms ({(on_cpu / off_cpu - 1) * 100:+.1f}%)  "
        f"[target <= 2%]"
    )
    return off_cpu


def recording_cost(cpu_per_run_ms: float) -> None:
    """The series calls one run makes (started, finished, two device calls), in
    this process with the series on: microseconds against a run's CPU."""
    from oktoscripts.metrics import series

    series.ENABLED = True
    calls = 100_000
    started = time.perf_counter()
    for _ in range(calls):
        series.run_started("api", 0.004)
        series.run_finished("api", "succeeded", 0.002)
    per_run = (time.perf_counter() - started) / calls
    started = time.perf_counter()
    for _ in range(calls):
        series.device_call("cwmp", None, 0.02)
    per_call = (time.perf_counter() - started) / calls
    print(
        f"recording one run (started + finished): {per_run * 1e6:.2f} us = "
        f"{per_run * 1000 / cpu_per_run_ms * 100:.2f}% of a trivial run's worker CPU; "
        f"one device call: {per_call * 1e6:.2f} us"
    )


def scrape_once(port: int) -> tuple[float, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    started = time.perf_counter()
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    assert response.status == 200, body[:200]
    return elapsed, len(body)


async def busy_scrape(tmp: Path, nc, finals: Finals, scrapes: int) -> None:  # noqa: ANN001
    port = free_port()
    proc = worker(tmp, True, port)
    try:
        await latency(nc, finals, 20)
        sleeping = await queue_many(nc, "sleep(4)\nreturn 1", 2000)
        trivial = await queue_many(nc, "return 1", 3000)
        await asyncio.sleep(0.5)  # the worker has taken them
        times, size = [], 0
        for _ in range(scrapes):
            elapsed, size = await asyncio.to_thread(scrape_once, port)
            times.append(elapsed)
            await asyncio.sleep(0.02)
        await drain(finals, sleeping + trivial)
    finally:
        stop(proc)
    times.sort()
    print(
        f"GET /metrics of a worker holding 2000 sleeping runs and running 3000 trivial ones "
        f"({scrapes} scrapes, {size} bytes): p50 {statistics.median(times) * 1000:.1f} ms, "
        f"p95 {times[int(0.95 * len(times))] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms  "
        f"[target <= 20 ms]"
    )


async def measure(tmp: Path, quick: bool, rounds: int) -> None:
    from oktoscripts.bus.connection import connect
    from oktoscripts.bus.streams import delete_prefixed
    from oktoscripts.bus.subjects import prefix

    nc = await connect("bench")
    finals = Finals()
    await finals.subscribe(nc)
    try:
        off_cpu = await overhead(tmp, nc, finals, rounds, 1000 if quick else 3000)
        recording_cost(off_cpu)
        await busy_scrape(tmp, nc, finals, 50 if quick else 200)
        print(
            f"(cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, shared machine: "
            f"end-to-end figures are noisy)"
        )
    finally:
        await delete_prefixed(nc.jetstream(), prefix())
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and scrapes")
    parser.add_argument("--rounds", type=int, default=3, help="rounds with and without (3)")
    options = parser.parse_args()
    with embedded_services("bench-metrics-", setup_environment, mongo=False, migrate=True) as (
        tmp,
        _,
    ):
        asyncio.run(measure(tmp, options.quick, options.rounds))


if __name__ == "__main__":
    main()
