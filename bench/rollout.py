"""A staged firmware rollout over simulated CPEs (issue 17's target).

    .venv/bin/python -m bench.rollout [--devices 1000] [--concurrency 50]

Starts (unless NATS_URL / MONGO_URI name real ones) the embedded nats-server
and SecantusDB, a fresh SQLite database, and as processes of their own one
``manage.py worker``, one ``manage.py scheduler`` and the ACS; the simulated
CPEs run in this process (so that some can be made to fail). A firmware
image is put in the file store.

1. Rollout: a bulk run in 4 waves (25 % each, a 1 s pause between them) of a
   script doing, per device, a Download of ``store:fw-2.0.0.bin`` (answered
   with its TransferComplete), a Reboot and a GetParameterValues checking the
   new SoftwareVersion. Printed: platform time (creation to "finished", minus
   the configured pauses; target <= 60 s for 1,000 devices), the items'
   statuses, how many CPEs really run 2.0.0, and downloads lost.
2. Injected failures: every 10th CPE now fails its Downloads (TransferComplete
   fault 9010); a second rollout (3.0.0, 4 waves, failure threshold 5 %) must
   stop after its first wave. Printed: the stop reason, waves started, items
   stopped, and CPEs left untouched.

Where the time goes (rollout 1): the CPU seconds each process used (the
platform's ACS, worker and scheduler; the databases; this process, which is
the 1,000 simulated CPEs), the items' phases (queued -> started by a worker,
the run itself, finished -> seen by the scheduler), the CPE sessions, and the
device time: the simulated download's pause (``download_s``) is the CPE's,
not the platform's, and is printed apart (with --concurrency N, at most N
items wait on it at once). ``BENCH_PROFILE=acs,worker,scheduler`` runs those
processes under cProfile and prints their top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import time
from pathlib import Path

from bench.automations import Processes, local_acs, percentile, setup_environment
from bench.services import embedded_services

ROLLOUT = """
local sn, version = args.serial, args.version
local root = get_device(sn).data_model == "TR-181" and "Device." or "InternetGatewayDevice."
local dl = send_cwmp_message(sn, [[<cwmp:Download><CommandKey>fw-]] .. version ..
  [[</CommandKey><FileType>1 Firmware Upgrade Image</FileType><URL>store:fw-]] .. version ..
  [[.bin</URL><Username></Username><Password></Password><FileSize>0</FileSize>
  <TargetFileName></TargetFileName><DelaySeconds>0</DelaySeconds></cwmp:Download>]], 7)
if dl.error_code then error("download: " .. dl.error_code .. " " .. dl.error_message) end
local rb = send_cwmp_message(sn, "<cwmp:Reboot><CommandKey>rb</CommandKey></cwmp:Reboot>", 5)
if rb ~= true then error("reboot: " .. tostring(rb.error_message)) end
local check = send_cwmp_message(sn, "<cwmp:GetParameterValues><ParameterNames><string>" ..
  root .. "DeviceInfo.SoftwareVersion</string></ParameterNames></cwmp:GetParameterValues>", 0)
local now = check[root .. "DeviceInfo.SoftwareVersion"]
if now ~= version then error("version check: " .. tostring(now)) end
return now
"""
PAUSE_S = 1
PROFILED = ("acs", "worker", "scheduler")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each named process used between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def used(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}


def phases(bulk_id: int) -> str:
    """The items' phases: queued -> started by a worker, the run, finished -> seen."""
    from oktoscripts.automations.models import BulkRunItem
    from oktoscripts.runs.models import Run

    items = dict(
        BulkRunItem.objects.filter(bulk_id=bulk_id)
        .exclude(run_id=None)
        .values_list("run_id", "updated")
    )
    wait, run, seen = [], [], []
    calls: dict[str, list[float]] = {}  # "n. name": latencies of a run's n-th device call
    rows = Run.objects.filter(pk__in=list(items)).values_list(
        "id", "created", "started", "finished", "metrics"
    )
    for run_id, created, started, finished, metrics in rows:
        if started and finished:
            wait.append((started - created).total_seconds())
            run.append((finished - started).total_seconds())
            seen.append((items[run_id] - finished).total_seconds())
        for n, call in enumerate((metrics or {}).get("device_calls", []), start=1):
            calls.setdefault(f"{n}. {call['name']}", []).append(call["latency_s"])

    def p(samples: list[float]) -> str:
        if not samples:
            return "-"
        return f"p50 {percentile(samples, 0.5):.2f} s, p95 {percentile(samples, 0.95):.2f} s"

    return (
        f"queued->started {p(wait)}; run {p(run)}; finished->seen by the scheduler {p(seen)}"
        + "".join(f"\n    device call {name}: {p(samples)}" for name, samples in calls.items())
    )


async def start_fleet(devices: int):  # noqa: ANN201 - a CpeFleet
    from oktoscripts.devices.client import default_credentials
    from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions, FleetCredentials

    credentials = FleetCredentials(os.urandom(16))
    fleet = CpeFleet(
        devices,
        CpeOptions(
            acs_url=f"http://127.0.0.1:{os.environ['OKTOSCRIPTS_ACS_PORT']}/",
            credentials=credentials,
            periodic_interval=3600,
            download_s=0.05,
        ),
        prefix="ROLL",
    )
    await asyncio.to_thread(default_credentials().create_or_update_many, fleet.credentials())
    await fleet.start(arrivals_per_s=200)
    deadline = time.monotonic() + 180
    while fleet.stats.sessions_ok < devices:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {fleet.stats.sessions_ok} of {devices} CPEs booted")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    return fleet


def store_firmware(version: str) -> None:
    from oktoscripts.devices.client import default_registry
    from oktoscripts.filestore.store import FileStore
    from oktoscripts.sim.cwmp_day2 import firmware_image

    store = FileStore(default_registry().db)
    store.ensure_indexes()
    store.put(
        f"fw-{version}.bin", firmware_image(version, 64 * 1024), "1 Firmware Upgrade Image", "bench"
    )


async def rollout(version: str, concurrency: int, threshold: float | None) -> tuple:
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User

    from oktoscripts.automations import bulk
    from oktoscripts.automations.models import BulkRun
    from oktoscripts.devices.client import default_registry
    from oktoscripts.scripts.editing import create_script

    def create() -> BulkRun:
        user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True})
        script = create_script(user, f"rollout-{version}.lua", ROLLOUT)
        return bulk.create(
            script=script,
            version=None,
            args={"version": version},
            device_filter={},
            concurrency=concurrency,
            user=user,
            registry=default_registry(),
            wave_percent=25,
            wave_pause_s=PAUSE_S,
            failure_threshold=threshold,
        )

    await sync_to_async(store_firmware)(version)
    started = time.monotonic()
    record = await sync_to_async(create)()
    while (record := await BulkRun.objects.aget(pk=record.pk)).status not in (
        "finished",
        "stopped",
    ):
        if time.monotonic() - started > 600:
            break
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - started
    progress = await sync_to_async(bulk.progress)(record)
    return record, elapsed, {k: v for k, v in progress["by_status"].items() if v}


async def run(devices: int, concurrency: int, meter: CpuMeter) -> None:
    from asgiref.sync import sync_to_async

    fleet = await start_fleet(devices)
    try:
        sessions_before = len(fleet.stats.durations)
        meter.start()
        record, elapsed, counts = await rollout("2.0.0", concurrency, None)
        cpu = meter.used()
        sessions = list(fleet.stats.durations)[sessions_before:]
        upgraded = sum(
            c.dm.value(c.dm.root + "DeviceInfo.SoftwareVersion") == "2.0.0" for c in fleet.cpes
        )
        pauses = PAUSE_S * (record.waves - 1)
        print(
            f"staged rollout over {devices} simulated CPEs, {record.waves} waves, "
            f"concurrency {concurrency}, Download + Reboot + version check each: "
            f"{record.status} in {elapsed:.1f} s, {elapsed - pauses:.1f} s of platform time "
            f"without the {pauses} s of pauses (target <= 60 s); items {counts}; "
            f"CPEs on 2.0.0: {upgraded}; lost: {devices - upgraded - counts.get('failed', 0)}"
        )
        download_s = fleet.options.download_s
        print(
            f"  device time: each CPE pauses {download_s:g} s per download "
            f"({download_s * devices:.0f} s over the fleet, at most "
            f"{download_s * devices / concurrency:.1f} s of the elapsed time at concurrency "
            f"{concurrency}); it is counted in the platform time above, not subtracted"
        )
        print(f"  items: {await sync_to_async(phases)(record.pk)}")
        print(
            f"  CPE sessions: {len(sessions)} ({len(sessions) / devices:.1f} per device), "
            f"p50 {percentile(sessions, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(sessions, 0.95) * 1000:.0f} ms"
        )
        print(
            f"  CPU seconds used in those {elapsed:.1f} s (2 cores = {2 * elapsed:.0f} s): "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
        )
        for n, cpe in enumerate(fleet.cpes):
            if n % 10 == 0:
                cpe.options = dataclasses.replace(cpe.options, quirk_download_fails=True)
        record, elapsed, counts = await rollout("3.0.0", concurrency, 5.0)
        touched = sum(
            c.dm.value(c.dm.root + "DeviceInfo.SoftwareVersion") == "3.0.0" for c in fleet.cpes
        )
        print(
            f"with every 10th CPE failing its downloads, threshold 5 %: {record.status} "
            f"after {elapsed:.1f} s, at wave {record.current_wave} of {record.waves} "
            f"({record.stop_reason!r}); items {counts}; CPEs on 3.0.0: {touched}"
        )
    finally:
        await fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    options = parser.parse_args()
    keep = os.environ.get("BENCH_KEEP_DIR")
    local_acs()
    with embedded_services("bench-rollout-", setup_environment, keep=keep, migrate=True) as (
        tmp,
        embedded,
    ):
        processes = Processes(tmp)
        profiled = set(filter(None, os.environ.get("BENCH_PROFILE", "").split(",")))
        try:

            def profile(name: str) -> Path | None:
                return tmp / f"{name}.prof" if name in profiled else None

            processes.start("worker", ["worker"], ready="ready", profile=profile("worker"))
            processes.start(
                "scheduler",
                ["scheduler", "--interval", "0.2"],
                ready="ready",
                profile=profile("scheduler"),
            )
            processes.start("acs", ["acs"], profile=profile("acs"))
            pids = {name: proc.pid for name, proc in processes.procs.items()}
            pids.update(embedded_pids(embedded))
            pids["simulated CPEs + this bench"] = os.getpid()
            asyncio.run(run(options.devices, options.concurrency, CpuMeter(pids)))
        finally:
            processes.stop()
        for name in sorted(profiled):
            print_profile(name, tmp / f"{name}.prof")


def embedded_pids(embedded: object) -> dict[str, int]:
    """The embedded MongoDB-wire server and nats-server, by name."""
    pids = {}
    for proc in getattr(embedded, "_procs", []):
        command = " ".join(map(str, proc.args))
        pids["mongodb (SecantusDB)" if "secantus" in command else "nats-server"] = proc.pid
    return pids


def print_profile(name: str, path: Path) -> None:
    import pstats

    if not path.exists():
        print(f"{name}: no profile written")
        return
    print(f"--- {name}: top functions by own time")
    pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
