"""Plan mode and replay: what intercepting a write costs, and how fast a
recording replays.

    .venv/bin/python -m bench.plans [--calls 200] [--replay 1000]

Starts the embedded SecantusDB and nats-server (unless MONGO_URI / NATS_URL
name real ones); runs the ACS and one simulated TR-181 CPE in this process.

- plan mode: a Lua run making N SetParameterValues calls, once for real and
  once in plan mode (each write then replaced by the read of its "before"):
  per call, the wall time of both, and the planner's own time per intercepted
  call (recording the change, the success shape: beyond the read it sends);
- replay: a Lua run of M device calls recorded (through the ACS to the CPE),
  then replayed from its recording (no device, no NATS): the replay's wall time.

Targets (issue 18): plan mode adds <= 1 ms per intercepted call; replay of a
1,000-call recording <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time

from bench.cwmp import setup_environment
from bench.services import embedded_services

SETS = r"""
for i = 1, {n} do
  local r = send_cwmp_message(args.serial, "<cwmp:SetParameterValues><ParameterList>"
    .. "<ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name>"
    .. "<Value xsi:type=\"xsd:string\">net-" .. i .. "</Value></ParameterValueStruct>"
    .. "</ParameterList><ParameterKey>b" .. i .. "</ParameterKey></cwmp:SetParameterValues>", 1)
  if r ~= true then error("set failed: " .. tostring(r.error_message)) end
end
"""
READS = r"""
local seen = 0
for i = 1, {n} do
  local r = send_cwmp_message(args.serial, "<cwmp:GetParameterValues><ParameterNames>"
    .. "<string>Device.DeviceInfo.UpTime</string></ParameterNames></cwmp:GetParameterValues>", 0)
  if r.error_code then error(r.error_code) end
  seen = seen + 1
end
return seen
"""


async def bench(options: argparse.Namespace) -> None:
    import nats
    from django.conf import settings

    from oktoscripts.bindings.services import Services
    from oktoscripts.cwmp.app import start_acs
    from oktoscripts.cwmp.config import AcsConfig
    from oktoscripts.devices.client import mongo_database
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.launcher.embedded.ports import free_port
    from oktoscripts.lua.limits import Limits
    from oktoscripts.lua.run import LuaRun
    from oktoscripts.runs.gates import Planner, Recorder, Replayer
    from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions, FleetCredentials

    db = mongo_database()
    CredentialStore(db).ensure_indexes()
    port = free_port()
    fleet = CpeFleet(
        1,
        CpeOptions(
            acs_url=f"http://127.0.0.1:{port}/",
            data_model="TR-181",
            credentials=FleetCredentials(secrets.token_bytes(16)),
            periodic_interval=3600,
        ),
        prefix="PLANBENCH",
    )
    CredentialStore(db).create_or_update_many(fleet.credentials())
    acs = await start_acs(
        AcsConfig(host="127.0.0.1", port=port, tls_port=None, path="/"),
        nats_url=settings.NATS_URL,
        mongo_uri=settings.MONGO_URI,
        db_name=settings.MONGO_DB_NAME,
    )
    nc = await nats.connect(settings.NATS_URL)
    services = Services(nats=nc, mongo=db)
    try:
        await fleet.start()
        while fleet.stats.sessions_ok < 1:
            await asyncio.sleep(0.05)
        serial = fleet.cpes[0].serial
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)

        async def run(source: str, gate=None):  # noqa: ANN001, ANN202
            lua = LuaRun(
                source,
                services=services,
                args={"serial": serial},
                limits=Limits(wall_seconds=600),
                gate=gate,
            )
            began = time.perf_counter()
            outcome = await lua.run()
            elapsed = time.perf_counter() - began
            if outcome.status != "succeeded":
                raise SystemExit(f"run {outcome.status}: {outcome.error}")
            return outcome, elapsed

        n = options.calls
        _, real = await run(SETS.format(n=n))
        planner = Planner()
        outcome, planned = await run(SETS.format(n=n), planner)
        intercepted = sum(len(d["calls"]) for d in planner.devices.values())
        print(
            f"plan mode, {n} SetParameterValues from Lua: for real {real / n * 1000:.2f} ms "
            f"per call, planned {planned / n * 1000:.2f} ms per call (each write replaced "
            f"by the read of its value); the planner's own time "
            f"{planner.overhead_s / max(1, intercepted) * 1000:.3f} ms per intercepted call "
            f"({intercepted} intercepted; target <= 1 ms)",
            flush=True,
        )

        m = options.replay
        recorder = Recorder()
        recorder.MAX_RECORDED = max(recorder.MAX_RECORDED, m)
        outcome, recording_s = await run(READS.format(n=m), recorder)
        recording = recorder.metrics()["recording"]
        assert len(recording["calls"]) == m, len(recording["calls"])
        replayer = Replayer(recording)
        replayed, replay_s = await run(READS.format(n=m), replayer)
        assert replayed.result == m and replayer.position == m
        print(
            f"replay of a {m}-call recording: {replay_s:.3f} s (target <= 2 s); the recorded "
            f"run took {recording_s:.1f} s against the CPE",
            flush=True,
        )
    finally:
        await fleet.stop()
        await nc.drain()
        await acs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--replay", type=int, default=1000)
    options = parser.parse_args()
    with embedded_services("bench-plans-", setup_environment):
        asyncio.run(bench(options))


if __name__ == "__main__":
    main()
