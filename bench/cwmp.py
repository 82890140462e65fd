"""The TR-069 ACS under simulated CPEs: bootstrap storm, steady state, RPC round trip.

    .venv/bin/python -m bench.cwmp [--cpes 1000] [--rate 100] [--intervals 4,2]
                                   [--steady 15] [--calls 200] [--tls]
                                   [--shared-credential]

Starts the embedded SecantusDB and nats-server (unless MONGO_URI / NATS_URL
name real ones), runs ``manage.py acs`` as its own process (so its CPU is
measured apart) and the simulated CPEs in this process, then measures:

- bootstrap storm: N new CPEs arriving at R per second, each with its first
  session (BOOTSTRAP, Digest authentication with a credential of its own,
  registration, connection-request credentials set by the ACS): time until
  all are persisted, failed sessions;
- steady state: periodic Informs from the N CPEs, one round per interval
  (by default 250/s offered, then 500/s to find the capacity): sessions/s
  achieved, p50/p95 session time (as the CPE sees it, first byte to 204);
- ``send_cwmp_message`` GetParameterValues from Lua through a Connection
  Request (Digest) to an idle simulated CPE: p50/p95 round trip.

CPU seconds are printed per phase for the ACS process, for this process
(the simulator; in the last phase also the Lua run) and for the embedded
NATS and MongoDB servers.

Targets (issue 5): storm of 1,000 at 100/s all persisted within 15 s with zero
failed sessions; >= 200 sessions/s steady state on 2 cores; GPV p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.services import embedded_services

CLK_TCK = os.sysconf("SC_CLK_TCK")


def setup_environment(tmp: Path) -> None:
    os.environ["OKTOSCRIPTS_BUS_PREFIX"] = f"bench{secrets.token_hex(3)}"
    os.environ["OKTOSCRIPTS_DATA_DIR"] = str(tmp / "var")
    os.environ["OKTOSCRIPTS_MONGO_DB"] = f"benchcwmp_{secrets.token_hex(3)}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oktoscripts.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its reaped children, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12)) / CLK_TCK


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    if not ordered:
        return float("nan"), float("nan")
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


class CpuMeter:
    """CPU used by each process between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: self._cpu(pid) for name, pid in self.pids.items()}

    def report(self, seconds: float) -> str:
        parts = []
        for name, pid in self.pids.items():
            used = self._cpu(pid) - self.before[name]
            parts.append(f"{name} {used:.1f} s ({100 * used / seconds:.0f}%)")
        return "CPU: " + ", ".join(parts)

    @staticmethod
    def _cpu(pid: int) -> float:
        return time.process_time() if pid == os.getpid() else cpu_seconds(pid)


async def bench(options: argparse.Namespace, pids: dict[str, int]) -> None:
    import nats
    from django.conf import settings

    from oktoscripts import pki
    from oktoscripts.bindings.services import Services
    from oktoscripts.devices.client import mongo_database
    from oktoscripts.launcher.embedded.ports import free_port, wait_for_port
    from oktoscripts.lua.limits import Limits
    from oktoscripts.lua.run import LuaRun
    from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions

    db = mongo_database()
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.sim.cwmp_cpe import FleetCredentials

    port = free_port()
    scheme = "https" if options.tls else "http"
    fleet = CpeFleet(
        options.cpes,
        CpeOptions(
            acs_url=f"{scheme}://127.0.0.1:{port}/",
            credentials=FleetCredentials(secrets.token_bytes(16)),
            ca_file=str(pki.tls_files().ca) if options.tls else None,
            auth="digest",
            periodic_interval=3600,
        ),
        prefix="BENCH",
    )
    # A credential per CPE, as in production, or one bound to them all (setup, not measured).
    store = CredentialStore(db)
    store.ensure_indexes()
    started = time.monotonic()
    if options.shared_credential:
        fleet.options.credentials = None
        fleet.options.username, fleet.options.password = "benchcpe", "bench-secret"
        store.create_or_update("benchcpe", "bench-secret", devices=fleet.serials)
    else:
        store.create_or_update_many(fleet.credentials())
    print(
        f"(setup: credentials stored in {time.monotonic() - started:.1f} s: "
        f"{'one for all CPEs' if options.shared_credential else 'one per CPE'})",
        flush=True,
    )

    ports = {"OKTOSCRIPTS_ACS_PORT": "off", "OKTOSCRIPTS_ACS_TLS_PORT": str(port)}
    if not options.tls:
        ports = {"OKTOSCRIPTS_ACS_PORT": str(port), "OKTOSCRIPTS_ACS_TLS_PORT": "off"}
    env = {**os.environ, **ports, "OKTOSCRIPTS_ACS_HOST": "127.0.0.1"}
    acs = subprocess.Popen(
        [sys.executable, "manage.py", "acs"],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        start_new_session=True,
    )
    try:
        if not wait_for_port("127.0.0.1", port, 30):
            raise SystemExit("the ACS did not start")
        pids = {"acs": acs.pid, "simulator": os.getpid(), **pids}
        await run_phases(options, pids, fleet, db, nats, settings, Services, LuaRun, Limits)
    finally:
        os.killpg(acs.pid, signal.SIGTERM)
        acs.wait(15)


async def run_phases(options, pids, fleet, db, nats, settings, Services, LuaRun, Limits) -> None:
    cpu = CpuMeter(pids)
    print(
        f"{options.cpes} CPEs, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f} at start",
        flush=True,
    )

    # -- bootstrap storm ----------------------------------------------------
    cpu.start()
    started = time.monotonic()
    await fleet.start(arrivals_per_s=options.rate)
    deadline = started + 120
    persisted = 0
    while time.monotonic() < deadline:
        persisted = db.devices.count_documents(
            {"serial": {"$regex": "^BENCH"}, "cwmp.connection_request.password": {"$exists": 1}}
        )
        if persisted >= options.cpes and fleet.stats.sessions_ok >= options.cpes:
            break
        await asyncio.sleep(0.1)
    storm_s = time.monotonic() - started
    p50, p95 = percentiles(list(fleet.stats.durations))
    print(
        f"bootstrap storm: {options.cpes} CPEs at {options.rate:g}/s: all persisted (with "
        f"connection-request credentials) after {storm_s:.1f} s "
        f"(arrivals alone take {options.cpes / options.rate:.1f} s); "
        f"sessions ok {fleet.stats.sessions_ok}, failed {fleet.stats.sessions_failed}; "
        f"session p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms",
        flush=True,
    )
    print("  " + cpu.report(storm_s), flush=True)

    # -- steady state ---------------------------------------------------------
    loop = asyncio.get_running_loop()
    for interval in options.intervals:
        for cpe in fleet.cpes:
            cpe.dm.params[cpe.dm.root + "ManagementServer.PeriodicInformInterval"].value = str(
                interval
            )
            loop.call_later(random.uniform(0, interval), cpe.wake)
        await asyncio.sleep(interval + 1)  # every CPE is on its periodic schedule
        ok0, failed0 = fleet.stats.sessions_ok, fleet.stats.sessions_failed
        fleet.stats.durations.clear()
        cpu.start()
        started = time.monotonic()
        await asyncio.sleep(options.steady)
        elapsed = time.monotonic() - started
        sessions = fleet.stats.sessions_ok - ok0
        p50, p95 = percentiles(list(fleet.stats.durations))
        print(
            f"steady state: periodic interval {interval:g} s ({options.cpes / interval:.0f} "
            f"sessions/s offered): {sessions / elapsed:.0f} sessions/s over {elapsed:.0f} s, "
            f"failed {fleet.stats.sessions_failed - failed0}; session p50 {p50 * 1000:.1f} ms, "
            f"p95 {p95 * 1000:.1f} ms",
            flush=True,
        )
        print("  " + cpu.report(elapsed), flush=True)
    for cpe in fleet.cpes:  # back to idle
        cpe.dm.params[cpe.dm.root + "ManagementServer.PeriodicInformInterval"].value = "3600"
    await asyncio.sleep(max(options.intervals) + 1)

    # -- send_cwmp_message GPV through a connection request ---------------------
    nc = await nats.connect(settings.NATS_URL)
    target = fleet.cpes[0]
    root = target.dm.root
    script = f"""
    for i = 1, {options.calls} do
      local r = send_cwmp_message("{target.serial}", [[<cwmp:GetParameterValues><ParameterNames>
        <string>{root}DeviceInfo.SoftwareVersion</string></ParameterNames>
        </cwmp:GetParameterValues>]], 0)
      if r.error_code then error(r.error_code .. " " .. r.error_message) end
    end
    """
    crs0 = fleet.stats.connection_requests
    cpu.start()
    started = time.monotonic()
    outcome = await LuaRun(
        script, services=Services(nats=nc, mongo=db), limits=Limits(wall_seconds=600)
    ).run()
    elapsed = time.monotonic() - started
    if outcome.status != "succeeded":
        print(f"GPV round trip: run {outcome.status}: {outcome.error}", flush=True)
    latencies = [c["latency_s"] for c in outcome.metrics.get("device_calls", []) if c["ok"]]
    p50, p95 = percentiles(latencies)
    print(
        f"send_cwmp_message GetParameterValues via connection request (Digest), "
        f"{len(latencies)} calls in sequence from Lua: p50 {p50 * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms (as the binding records them; "
        f"{elapsed / max(1, options.calls) * 1000:.1f} ms per call with the Lua loop); "
        f"connection requests {fleet.stats.connection_requests - crs0}",
        flush=True,
    )
    print("  " + cpu.report(elapsed) + " (simulator process also runs the Lua)", flush=True)

    # The same round trip from Python (no Lua engine): the ACS path alone.
    from oktoscripts.cwmp import client
    from oktoscripts.cwmp.soap import RpcRequest

    request = RpcRequest("GetParameterValues", names=[root + "DeviceInfo.SoftwareVersion"])
    samples = []
    for _ in range(options.calls):
        begin = time.monotonic()
        answer = await client.call(nc, target.serial, request, timeout_s=30)
        if answer.get("ok"):
            samples.append(time.monotonic() - begin)
    p50, p95 = percentiles(samples)
    print(
        f"the same from Python (oktoscripts.cwmp.client.call, no Lua): {len(samples)} ok, "
        f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms",
        flush=True,
    )
    await nc.drain()
    await fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="storm arrivals per second")
    parser.add_argument(
        "--intervals",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[4.0, 2.0],
        help="periodic inform intervals of the steady-state rounds, seconds (default 4,2: "
        "250/s offered, then 500/s to find the capacity)",
    )
    parser.add_argument("--steady", type=float, default=15.0, help="steady-state seconds")
    parser.add_argument("--calls", type=int, default=200, help="GPV round trips")
    parser.add_argument(
        "--tls", action="store_true", help="CPEs talk HTTPS to the ACS (its plain port off)"
    )
    parser.add_argument(
        "--shared-credential",
        action="store_true",
        help="one credential bound to every CPE instead of one per CPE",
    )
    options = parser.parse_args()
    with embedded_services("bench-cwmp-", setup_environment) as (_, embedded):
        servers = {
            f"embedded {name}": proc.pid
            for name, proc in zip(("mongo", "nats"), embedded._procs, strict=False)
        }
        asyncio.run(bench(options, servers))


if __name__ == "__main__":
    main()
