"""The device registry: Lua reads, full listings and upsert throughput.

    .venv/bin/python -m bench.devices [--devices 10000] [--seconds 5]

Starts the embedded SecantusDB and nats-server (unless MONGO_URI / NATS_URL
name real ones), fills a fresh database and measures:

- ``get_device`` from Lua: per-call time of a Lua loop of calls (the whole
  path: argument check, pymongo round trip, conversion to a Lua table), and
  p50/p95 of the registry read under it;
- ``get_all_devices()`` from Lua with N devices: wall time, Lua memory of the
  run, RSS growth of the process;
- upserts: inserting N new devices in bulk (with their new-device events on
  JetStream), single-device upserts of known devices (a periodic Inform) with
  p50/p95 latency and sustained rate, and bulk upserts of known devices.

Each phase also prints the CPU time per operation of the database server and
of this process: on a shared machine wall times move with everyone else's
load, CPU per operation much less, and 1 / (server CPU per op) is what the
embedded server can do on one free core.

Targets (issue 4): get_device p50 <= 1 ms; get_all_devices() of 10,000
devices <= 1 s; 1,000 upserts/s sustained from one process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path

from oktoscripts.devices.registry import DeviceRegistry


def setup_environment(tmp: Path) -> None:
    os.environ["OKTOSCRIPTS_BUS_PREFIX"] = f"bench{secrets.token_hex(3)}"
    os.environ["OKTOSCRIPTS_DATA_DIR"] = str(tmp / "var")
    os.environ["OKTOSCRIPTS_MONGO_DB"] = f"benchdevices_{secrets.token_hex(3)}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oktoscripts.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def server_pid(uri: str) -> int | None:
    """The pid of the embedded SecantusDB serving ``uri`` (None for another server)."""
    port = uri.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[-1].encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"secantus" in part for part in cmdline) and port in cmdline:
            return int(proc.name)
    return None


class CpuMeter:
    """CPU seconds this process and the database server use over a phase.
    Unlike wall time, CPU per operation hardly depends on what else the
    machine is running, so it tells the capacity of one free core."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._t0 = (0.0, 0.0)

    def _server(self) -> float:
        if self.pid is None:
            return 0.0
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self._t0 = (time.process_time(), self._server())

    def report(self, ops: int, unit: str = "op") -> str:
        client = (time.process_time() - self._t0[0]) / ops * 1000
        if self.pid is None:
            return f"CPU per {unit}: client {client:.2f} ms"
        server = (self._server() - self._t0[1]) / ops * 1000
        line = f"CPU per {unit}: database server {server:.2f} ms, this process {client:.2f} ms"
        if unit == "op" and server:
            line += f" (the server alone on one free core: {1000 / server:.0f}/s)"
        return line


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.95)]


class TimedRegistry(DeviceRegistry):
    """A registry that records how long each device read takes."""

    def __init__(self, db) -> None:
        super().__init__(db)
        self.reads: list[float] = []

    def get_lua(self, serial: str) -> dict | None:
        started = time.perf_counter()
        try:
            return super().get_lua(serial)
        finally:
            self.reads.append(time.perf_counter() - started)


def inform(registry, serial: str, i: int):  # noqa: ANN201 - a DeviceUpdate
    return registry.cwmp_update(
        serial,
        oui="00259E",
        product_class=f"HG{i % 7}",
        manufacturer=("Huawei", "ZTE", "Nokia")[i % 3],
        model="HG8245H",
        software_version="V3R017C10",
        hardware_version="HW1",
        data_model="TR-098",
        ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
        periodic_inform_interval=300,
        connection_request_url=f"http://10.0.{i // 256 % 256}.{i % 256}:7547/cr",
        connection_request_username="cr",
        connection_request_password="cr-secret",
        events=["2 PERIODIC"],
    )


async def bench(devices: int, seconds: float) -> None:
    import nats
    from django.conf import settings

    from oktoscripts.api.services import Services
    from oktoscripts.devices.client import mongo_database
    from oktoscripts.devices.events import LoopAnnouncer, new_device_events
    from oktoscripts.lua.run import LuaRun

    nc = await nats.connect(settings.NATS_URL)
    db = mongo_database()
    registry = DeviceRegistry(db, announcer=LoopAnnouncer(nc, asyncio.get_running_loop()))
    registry.ensure_indexes()
    services = Services(nats=nc, mongo=db, devices=registry)
    events = await new_device_events(nc)
    received = 0

    async def count_events() -> None:
        nonlocal received
        async for _ in events:
            received += 1

    counter = asyncio.create_task(count_events())
    cpu = CpuMeter(server_pid(settings.MONGO_URI))
    print(
        f"database: {settings.MONGO_URI} ({settings.MONGO_DB_NAME}); "
        f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )

    # -- inserting the fleet in bulk, with new-device events ------------------
    serials = [f"BENCH{i:06d}" for i in range(devices)]
    batch = 500
    started = time.perf_counter()
    cpu.start()
    for first in range(0, devices, batch):
        chunk = serials[first : first + batch]
        updates = [inform(registry, s, first + k) for k, s in enumerate(chunk)]
        await asyncio.to_thread(registry.bulk_upsert, updates)
    inserted_s = time.perf_counter() - started
    deadline = time.monotonic() + 30
    while received < devices and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(
        f"bulk insert of {devices} new devices (batches of {batch}): {inserted_s:.2f} s, "
        f"{devices / inserted_s:.0f} upserts/s; new-device events received: {received}"
    )
    print(f"  {cpu.report(devices)}")

    # -- single-device upserts of known devices (a periodic Inform each) -------
    def single_upserts(duration: float, offset: int) -> list[float]:
        latencies = []
        end = time.perf_counter() + duration
        i = offset
        while time.perf_counter() < end:
            update = inform(registry, serials[i % devices], i)
            t = time.perf_counter()
            registry.upsert(update)
            latencies.append(time.perf_counter() - t)
            i += 1
        return latencies

    cpu.start()
    latencies = await asyncio.to_thread(single_upserts, seconds, 0)
    p50, p95 = percentiles(latencies)
    print(
        f"single upsert, 1 thread, {seconds:.0f} s: {len(latencies) / seconds:.0f} upserts/s, "
        f"p50 {p50 * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"
    )
    print(f"  {cpu.report(len(latencies))}")

    threads = 4
    results: list[list[float]] = [[] for _ in range(threads)]

    def worker(k: int) -> None:
        results[k] = single_upserts(seconds, k * 997)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    await asyncio.to_thread(lambda: [thread.join() for thread in pool])
    merged = [x for r in results for x in r]
    p50, p95 = percentiles(merged)
    print(
        f"single upsert, {threads} threads, {seconds:.0f} s: {len(merged) / seconds:.0f} "
        f"upserts/s, p50 {p50 * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"
    )

    # -- bulk upserts of known devices (a burst of Informs) ----------------------
    def bulk_known(duration: float, size: int) -> int:
        done = 0
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            updates = [
                inform(registry, serials[(done + k) % devices], done + k) for k in range(size)
            ]
            registry.bulk_upsert(updates)
            done += size
        return done

    for size in (100, 500):
        t = time.perf_counter()
        cpu.start()
        done = await asyncio.to_thread(bulk_known, seconds, size)
        elapsed = time.perf_counter() - t
        print(f"bulk upsert of known devices, batches of {size}: {done / elapsed:.0f} upserts/s")
        print(f"  {cpu.report(done)}")

    # -- get_device from Lua ------------------------------------------------------
    # Lua has no wall clock finer than a second: time the whole loop for the
    # mean per call, and the database read inside each call (from a registry
    # that records it) for the distribution; the Lua part is their difference.
    calls = 2000
    source = (
        "local n = 0\n"
        f"for i = 1, {calls} do\n"
        "  local d = get_device(string.format('BENCH%06d', (i * 7919) % " + str(devices) + "))\n"
        "  if d then n = n + 1 end\n"
        "end\n"
        "return n"
    )
    timed = TimedRegistry(db)
    timed_services = Services(nats=nc, mongo=db, devices=timed)
    await LuaRun("return get_device('BENCH000000') ~= false", services=timed_services).run()
    timed.reads.clear()
    t = time.perf_counter()
    cpu.start()
    outcome = await LuaRun(source, services=timed_services).run()
    lua_s = time.perf_counter() - t
    lua_cpu = cpu.report(calls, "call")
    assert outcome.result == calls, outcome
    p50, p95 = percentiles(timed.reads)
    mean_read = sum(timed.reads) / len(timed.reads)
    lua_part = lua_s / calls - mean_read
    print(
        f"get_device from Lua: {lua_s / calls * 1000:.3f} ms per call on average "
        f"({calls} calls in one run); its database read p50 {p50 * 1000:.3f} ms, "
        f"p95 {p95 * 1000:.3f} ms; Lua and binding around it {lua_part * 1000:.3f} ms "
        f"-> p50 of the call about {(p50 + lua_part) * 1000:.3f} ms"
    )
    print(f"  {lua_cpu}")

    # -- get_all_devices from Lua ---------------------------------------------------
    for _ in range(2):
        before = rss_mb()
        t = time.perf_counter()
        cpu.start()
        outcome = await LuaRun("local all = get_all_devices() return #all", services=services).run()
        elapsed = time.perf_counter() - t
        assert outcome.result == devices, outcome
        print(
            f"get_all_devices() with {devices} devices: {elapsed:.3f} s (whole run), "
            f"Lua peak memory {outcome.metrics['peak_memory_bytes'] / 2**20:.1f} MB, "
            f"process RSS {before:.0f} -> {rss_mb():.0f} MB"
        )
        print(f"  {cpu.report(1, 'listing')}")
    t = time.perf_counter()
    await asyncio.to_thread(registry.all_lua)
    print(f"  of which the database read and device tables: {time.perf_counter() - t:.3f} s")

    counter.cancel()
    await nc.close()
    db.client.drop_database(db.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-devices-") as tmp_name:
        tmp = Path(tmp_name)
        setup_environment(tmp)
        from oktoscripts.embedded.services import EmbeddedServices

        embedded = EmbeddedServices(tmp)
        try:
            if not os.environ.get("MONGO_URI"):
                os.environ["MONGO_URI"] = embedded.start_mongo()
            if not os.environ.get("NATS_URL"):
                os.environ["NATS_URL"] = embedded.start_nats()
            import django

            django.setup()
            asyncio.run(bench(options.devices, options.seconds))
        finally:
            embedded.stop()


if __name__ == "__main__":
    main()
