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
  JetStream, until their pending flags are cleared); then the sustained rate
  of the two upsert paths the protocols use, each for ``--seconds``:
  periodic Informs of known devices through the ACS's own device backend
  (``DeviceBackend.record_inform`` from 200 concurrent sessions, its group
  commit into ``bulk_upsert``), first by a registry that has not written
  these devices yet (an ACS just restarted: every first write is in full),
  then by the same registry again (steady state: a device's identity is not
  written again); and USP agent registrations (``upsert_usp`` from 16
  threads, as the controller calls it); then single upserts from one thread
  (latency). A sustained figure counts only upserts the database
  acknowledged, and each phase checks at its end, by a count in the
  database, that every device it wrote carries that phase's write.

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
import contextlib
import os
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.services import embedded_services
from oktoscripts.devices.registry import DeviceRegistry

TARGET_UPSERTS_S = 1000.0


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
    """A device's first Inform and the credentials the ACS then set on it."""
    return registry.cwmp_update(
        serial,
        oui="00259E",
        product_class=f"HG{i % 7}",
        manufacturer=("Huawei", "ZTE", "Nokia")[i % 3],
        model="HG8245H",
        software_version="V3R017C10",
        hardware_version="HW1",
        data_model="TR-098",
        ip=ip_of(i),
        periodic_inform_interval=300,
        connection_request_url=f"http://{ip_of(i)}:7547/cr",
        connection_request_username="cr",
        connection_request_password="cr-secret",
        events=["0 BOOTSTRAP", "1 BOOT"],
    )


def ip_of(i: int) -> str:
    return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"


def periodic_inform(serial: str, i: int):  # noqa: ANN201 - a cwmp.soap.Inform
    """The Inform a known CPE sends every periodic interval, as the ACS parses it."""
    from oktoscripts.cwmp.soap import DeviceId, EventStruct, Inform

    root = "InternetGatewayDevice."
    return Inform(
        device_id=DeviceId(("Huawei", "ZTE", "Nokia")[i % 3], "00259E", f"HG{i % 7}", serial),
        events=[EventStruct("2 PERIODIC")],
        max_envelopes=1,
        current_time="2026-01-01T00:00:00Z",
        retry_count=0,
        parameters={
            root + "DeviceInfo.HardwareVersion": "HW1",
            root + "DeviceInfo.SoftwareVersion": "V3R017C10",
            root + "DeviceInfo.ProvisioningCode": "",
            root + "ManagementServer.ConnectionRequestURL": f"http://{ip_of(i)}:7547/cr",
            root + "ManagementServer.ParameterKey": "",
            root + "ManagementServer.PeriodicInformInterval": "300",
            root + "WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress": ip_of(
                i
            ),
        },
    )


class Sustained:
    """Counts acknowledged upserts over a phase and checks in the database, at
    its end, that the devices it wrote carry the phase's write."""

    def __init__(self, label: str, collection, field: str, devices: int) -> None:  # noqa: ANN001
        self.label = label
        self.collection = collection
        self.field = field
        self.devices = devices
        self.done = 0
        self.started = datetime.now(UTC)
        self.t0 = time.perf_counter()

    def next_index(self) -> int:
        """Devices in turn: the first ``devices`` upserts write distinct devices."""
        index = self.done
        self.done += 1
        return index

    def report(self, target: float = TARGET_UPSERTS_S) -> float:
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed
        # Each upsert set ``field`` to its own time (ms precision, as BSON keeps it).
        since = self.started.replace(microsecond=self.started.microsecond // 1000 * 1000)
        persisted = self.collection.count_documents({self.field: {"$gte": since}})
        expected = min(self.done, self.devices)
        verdict = "meets" if rate >= target else "BELOW"
        print(
            f"{self.label}: {self.done} upserts in {elapsed:.1f} s = {rate:.0f} upserts/s "
            f"sustained ({verdict} the target of {target:.0f}/s); "
            f"in the database: {persisted} of {expected} devices carry this phase's write"
        )
        if persisted != expected:
            print("  !! upserts missing from the database: the figure above is not valid")
        return rate


async def acs_informs(
    registry, serials: list[str], seconds: float, sessions: int, label: str
) -> Sustained:
    """Periodic Informs of known devices through the ACS's device backend."""
    from oktoscripts.cwmp.backend import DeviceBackend
    from oktoscripts.devices.credentials import CredentialStore

    backend = DeviceBackend(registry, CredentialStore(registry.db))
    meter = Sustained(
        f"ACS periodic Informs {label}, {sessions} concurrent sessions, {seconds:.0f} s",
        registry.collection,
        "cwmp.last_inform",
        len(serials),
    )
    end = time.perf_counter() + seconds
    sent = 0

    async def session() -> None:
        nonlocal sent
        while time.perf_counter() < end:
            i = sent
            sent += 1
            await backend.record_inform(
                periodic_inform(serials[i % len(serials)], i), ip_of(i), "urn:dslforum-org:cwmp-1-0"
            )
            meter.next_index()

    await asyncio.gather(*(session() for _ in range(sessions)))
    backend.close()
    return meter


def usp_registrations(registry, serials: list[str], seconds: float, threads: int) -> Sustained:
    """Agents (re)connecting: upsert_usp from several threads at once."""
    meter = Sustained(
        f"USP agent registrations, {threads} threads, {seconds:.0f} s",
        registry.collection,
        "usp.last_seen",
        len(serials),
    )
    lock = threading.Lock()
    end = time.perf_counter() + seconds

    def agent_thread() -> None:
        while time.perf_counter() < end:
            with lock:
                i = meter.next_index()
            registry.upsert_usp(
                serials[i % len(serials)],
                vendor=("Huawei", "ZTE", "Nokia")[i % 3],
                model="HG8245H",
                version="V3R017C10",
                product_class=f"HG{i % 7}",
                ip=ip_of(i),
                mtp="websocket",
                mtp_address={"peer": f"{ip_of(i)}:40000"},
                owner="bench",
            )

    pool = [threading.Thread(target=agent_thread) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return meter


async def bench(devices: int, seconds: float) -> None:
    import nats
    from django.conf import settings

    from oktoscripts.bindings.services import Services
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
    # The registry clears the devices' pending-event flags once JetStream has
    # the events: that is part of inserting them, and must not run into the
    # next phase.
    while registry.collection.count_documents({"announce_pending": True}) and (
        time.monotonic() < deadline
    ):
        await asyncio.sleep(0.05)
    settled_s = time.perf_counter() - started
    print(
        f"bulk insert of {devices} new devices (batches of {batch}): {inserted_s:.2f} s, "
        f"{devices / inserted_s:.0f} upserts/s; new-device events received: {received}; "
        f"with their events stored and acknowledged: {settled_s:.2f} s, "
        f"{devices / settled_s:.0f} new devices/s"
    )
    print(f"  {cpu.report(devices)}")

    # -- the sustained rates of the protocols' upsert paths ------------------------
    # An ACS that just started writes each device's first Inform in full; then
    # it leaves out the identity it wrote (oktoscripts/devices/identity.py).
    acs_registry = DeviceRegistry(db, announcer=registry.announcer)
    known = serials
    rates: list[str] = []
    for label, short in (
        ("after an ACS restart", "ACS just restarted"),
        ("of devices it wrote since", "ACS steady state"),
    ):
        cpu.start()
        meter = await acs_informs(acs_registry, known, seconds, 200, label)
        cpu_line = cpu.report(meter.done)  # before the check's own query
        rates.append(f"{short} {meter.report():.0f}/s")
        print(f"  {cpu_line}")
        known = serials[: min(meter.done, devices)]
    cpu.start()
    meter = await asyncio.to_thread(usp_registrations, registry, serials, seconds, 16)
    cpu_line = cpu.report(meter.done)
    rates.append(f"USP registrations {meter.report():.0f}/s")
    print(f"  {cpu_line}")
    print(
        f"SUSTAINED UPSERTS from one process (target {TARGET_UPSERTS_S:.0f}/s): "
        + ", ".join(rates)
        + f"; load average now {os.getloadavg()[0]:.2f}"
    )

    # -- single upserts of known devices from one thread (latency) --------------------
    def single_upserts(duration: float, offset: int) -> list[float]:
        latencies = []
        end = time.perf_counter() + duration
        i = offset
        while time.perf_counter() < end:
            update = registry.cwmp_update(
                serials[i % devices], ip=ip_of(i), events=["2 PERIODIC"], oui="00259E"
            )
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
    with contextlib.suppress(BaseException):  # the listener ends with the connection
        await counter
    await nc.close()
    db.client.drop_database(db.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    options = parser.parse_args()
    with embedded_services("bench-devices-", setup_environment):
        asyncio.run(bench(options.devices, options.seconds))


if __name__ == "__main__":
    main()
