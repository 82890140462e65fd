"""USP: Get round trips from Lua, and one script walking 1,000 agents.

    .venv/bin/python -m bench.usp [--gets 300] [--agents 1000]

Starts the embedded nats-server (bus and MQTT 3.1.1 listener) and SecantusDB,
the USP controller as its own process (``manage.py usp``), and the simulated
agents in another process (``python -m bench.usp fleet ...``); the Lua runs
in this process, through the same binding, NATS request/reply and MTPs a
worker uses. Figures:

- Get round trip from Lua to one agent and back, per call as the binding
  records it (ctx.record_call), p50/p95 over ``--gets`` calls, over MQTT
  (3.1.1 through nats-server; MQTT 5 through Mosquitto on 127.0.0.1:1883 when
  it answers) and over WebSocket;
- ``--agents`` WebSocket agents connected to the controller: how long they
  take to connect and register, then one script sending a Get to each in
  turn: its duration.

Everything on the platform's defaults: agents log in to the embedded broker
with a device credential bound to them (logins answered by the controller),
and WebSocket agents connect over TLS with a client certificate each
(``OKTOSCRIPTS_USP_WS_TLS=0`` in the environment: plain ws:// and Basic).

Targets (issue 6): p50 <= 5 ms over MQTT, <= 2 ms over WebSocket on
loopback; 1,000 agents walked by one script within 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTROLLER_ID = "oui:000000:bench-controller"
WS_USER, WS_PASSWORD = "bench-agent", "bench-secret"

ONE_GET = r"""
local n, sn = args.n, args.sn
local p = {body = {request = {get = {param_paths = {"Device.DeviceInfo.SoftwareVersion"}}}}}
for i = 1, n do
  local r = send_usp_message(sn, p)
  if r.error_code then error("Get failed: " .. r.error_message) end
end
"""

WALK = r"""
local p = {body = {request = {get = {param_paths = {"Device.DeviceInfo.SerialNumber"}}}}}
local failed = 0
for _, sn in ipairs(args.sns) do
  local r = send_usp_message(sn, p)
  if r.error_code then failed = failed + 1 end
end
return failed
"""


def ws_tls() -> bool:
    return os.environ.get("OKTOSCRIPTS_USP_WS_TLS", "1").strip().lower() not in (
        "0",
        "off",
        "false",
        "no",
    )


def setup_environment(tmp: Path) -> None:
    os.environ["OKTOSCRIPTS_BUS_PREFIX"] = f"bench{secrets.token_hex(3)}"
    os.environ["OKTOSCRIPTS_DATA_DIR"] = str(tmp / "var")
    os.environ["OKTOSCRIPTS_MONGO_DB"] = f"benchusp_{secrets.token_hex(3)}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oktoscripts.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def mosquitto_v5() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1):
            return True
    except OSError:
        return False


class Platform:
    """The services and the controller process of one benchmark."""

    def __init__(self, tmp: Path) -> None:
        from oktoscripts.launcher.embedded.ports import free_port
        from oktoscripts.launcher.embedded.services import EmbeddedServices

        self.tmp = tmp
        self.services = EmbeddedServices(tmp)
        self.nats_url = os.environ.get("NATS_URL") or self.services.start_nats()
        self.mqtt_url = self.services.nats.mqtt_url if self.services.nats else ""
        self.mongo_uri = os.environ.get("MONGO_URI") or self.services.start_mongo()
        self.ws_port = free_port()
        root = f"bench-{secrets.token_hex(3)}"
        self.topic, self.agent_topic = f"{root}/controller", f"{root}/agent"
        self.controllers: list[subprocess.Popen] = []
        self.fleets: list[subprocess.Popen] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(
            os.environ,
            NATS_URL=self.nats_url,
            MONGO_URI=self.mongo_uri,
            MQTT_URL=self.mqtt_url,
            OKTOSCRIPTS_USP_ENDPOINT_ID=CONTROLLER_ID,
            OKTOSCRIPTS_USP_MQTT_TOPIC=self.topic,
            OKTOSCRIPTS_USP_MQTT_AGENT_TOPIC=self.agent_topic,
            OKTOSCRIPTS_USP_WS_PORT=str(self.ws_port),
        )
        if self.services.nats:
            env["OKTOSCRIPTS_EMBEDDED_MQTT_AUTH"] = str(self.services.nats.auth_file)
        env.update(extra)
        return env

    def start_controller(self, mqtt_url: str) -> None:
        from oktoscripts.launcher.embedded.ports import wait_for_port

        self.stop(self.controllers)
        env = self.env(MQTT_URL=mqtt_url)
        self.controllers.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "usp"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(self.tmp / "usp.log", "ab"),
            )
        )  # noqa: SIM115
        if not wait_for_port("127.0.0.1", self.ws_port, 30):
            raise RuntimeError(f"the controller did not start (see {self.tmp / 'usp.log'})")

    def start_fleet(
        self, count: int, mtp: str, prefix: str, mqtt_url: str = "", version: str = "3.1.1"
    ) -> list[str]:
        from oktoscripts.usp import mqtt_topics

        mqtt_url = mqtt_url or self.mqtt_url  # the agents log in with their own credential
        mqtt_url = mqtt_topics.broker_url(
            mqtt_topics.broker_address(mqtt_url).without_credentials()
        )
        argv = [
            sys.executable,
            "-m",
            "bench.usp",
            "fleet",
            "--count",
            str(count),
            "--mtp",
            mtp,
            "--prefix",
            prefix,
            "--mqtt-url",
            mqtt_url,
            "--mqtt-version",
            version,
            "--topic",
            self.topic,
            "--agent-topic",
            self.agent_topic,
            "--ws-url",
            f"{'wss' if ws_tls() else 'ws'}://127.0.0.1:{self.ws_port}/usp",
        ]
        self.fleets.append(
            subprocess.Popen(
                argv, env=self.env(), cwd=ROOT, stderr=open(self.tmp / "fleet.log", "ab")
            )
        )  # noqa: SIM115
        return [f"os::bench-{prefix}-{i:05d}" for i in range(count)]

    @staticmethod
    def stop(procs: list[subprocess.Popen]) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        procs.clear()

    def close(self) -> None:
        self.stop(self.fleets)
        self.stop(self.controllers)
        self.services.stop()


async def wait_registered(registry, serials: list[str], timeout: float) -> float:
    started = time.monotonic()
    pending = set(serials)
    while pending:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{len(pending)} agents never registered")
        query = {"serial": {"$in": list(pending)}, "status": 2, "vendor": {"$ne": None}}
        found = await asyncio.to_thread(list, registry.collection.find(query, {"serial": 1}))
        pending -= {d["serial"] for d in found}
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def lua(services, source: str, args: dict):
    from oktoscripts.lua.limits import Limits
    from oktoscripts.lua.run import LuaRun

    outcome = await LuaRun(
        source, services=services, args=args, limits=Limits(wall_seconds=300)
    ).run()
    if outcome.status != "succeeded":
        raise RuntimeError(f"benchmark script failed: {outcome.error}")
    return outcome


async def round_trips(services, serial: str, gets: int) -> list[float]:
    await lua(services, ONE_GET, {"n": 20, "sn": serial})  # warm up every hop
    outcome = await lua(services, ONE_GET, {"n": gets, "sn": serial})
    return [c["latency_s"] for c in outcome.metrics["device_calls"]]


def report(label: str, samples: list[float], target_ms: float) -> None:
    p50, p95 = percentile(samples, 0.5) * 1000, percentile(samples, 0.95) * 1000
    verdict = "meets" if p50 <= target_ms else "MISSES"
    print(
        f"  {label:<34} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   "
        f"({len(samples)} Gets; target p50 <= {target_ms:g} ms: {verdict})"
    )


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-usp-"))
    setup_environment(tmp)
    import django

    django.setup()
    import nats
    from django.conf import settings

    from oktoscripts.bindings.services import Services
    from oktoscripts.devices.client import new_client
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.devices.registry import DeviceRegistry

    platform = Platform(tmp)
    try:
        db = new_client(platform.mongo_uri)[settings.MONGO_DB_NAME]
        registry = DeviceRegistry(db)
        store = CredentialStore(db)
        store.create_or_update(WS_USER, WS_PASSWORD)
        store.bind(WS_USER, ["os::bench-*"])
        nc = await nats.connect(platform.nats_url)
        services = Services(nats=nc, mongo=db, devices=registry)
        print(
            "USP benchmark (controller and agents in their own processes, loopback; "
            f"WebSocket {'over TLS, client certificates' if ws_tls() else 'plain, Basic'})"
        )

        platform.start_controller(platform.mqtt_url)
        serials = platform.start_fleet(1, "mqtt", "mqtt311")
        serials += platform.start_fleet(1, "websocket", "ws")
        await wait_registered(registry, serials, 60)
        print("Get round trip from Lua:")
        report("MQTT 3.1.1 (nats-server)", await round_trips(services, serials[0], args.gets), 5)
        report("WebSocket", await round_trips(services, serials[1], args.gets), 2)
        if mosquitto_v5():
            platform.stop(platform.fleets)
            platform.start_controller("mqtt://127.0.0.1:1883")
            v5 = platform.start_fleet(
                1, "mqtt", f"mqtt5{secrets.token_hex(2)}", "mqtt://127.0.0.1:1883", "5"
            )
            await wait_registered(registry, v5, 60)
            report(
                "MQTT 5 (Mosquitto 127.0.0.1:1883)",
                await round_trips(services, v5[0], args.gets),
                5,
            )
        else:
            print("  MQTT 5: skipped (no broker on 127.0.0.1:1883)")

        platform.stop(platform.fleets)
        platform.start_controller(platform.mqtt_url)
        many = platform.start_fleet(args.agents, "websocket", "many")
        took = await wait_registered(registry, many, 300)
        print(f"{args.agents} WebSocket agents connected and registered in {took:.1f} s")
        outcome = await lua(services, WALK, {"sns": many})
        duration = outcome.metrics["duration_s"]
        latencies = [c["latency_s"] for c in outcome.metrics["device_calls"]]
        verdict = "meets" if duration <= 3 and outcome.result == 0 else "MISSES"
        print(
            f"  one script, a Get to each in turn: {duration:.2f} s, {outcome.result} failed, "
            f"p50 {percentile(latencies, 0.5) * 1000:.2f} ms "
            f"(target <= 3 s: {verdict})"
        )
        await nc.close()
    finally:
        platform.close()


async def fleet(args: argparse.Namespace) -> None:
    """The agents' process: ``--count`` agents until SIGTERM."""
    from oktoscripts.pki import pki_dir
    from oktoscripts.sim.usp_agent import AgentConfig, SimAgent, run_fleet
    from oktoscripts.sim.usp_fleet import ensure_sim_certificates

    eids = [f"os::bench-{args.prefix}-{i:05d}" for i in range(args.count)]
    certificates = {}
    if args.mtp == "websocket" and args.ws_url.startswith("wss:"):
        certificates = ensure_sim_certificates(eids)
    agents = [
        SimAgent(
            AgentConfig(
                eid,
                CONTROLLER_ID,
                mtp=args.mtp,
                index=i + 1,
                mqtt_url=args.mqtt_url,
                mqtt_version=args.mqtt_version,
                controller_topic=args.topic,
                agent_topic=f"{args.agent_topic}/{eid}",
                ws_url=args.ws_url,
                username="" if eid in certificates else WS_USER,
                password="" if eid in certificates else WS_PASSWORD,
                tls_ca=str(pki_dir() / "ca.pem") if certificates else "",
                tls_cert=certificates.get(eid, ("", ""))[0],
                tls_key=certificates.get(eid, ("", ""))[1],
                retry_s=0.5,
            )
        )
        for i, eid in enumerate(eids)
    ]
    task = asyncio.ensure_future(run_fleet(agents))
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    for agent in agents:
        await agent.stop()
    task.cancel()


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.usp",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--agents", type=int, default=1000)
    sub = parser.add_subparsers(dest="mode")
    f = sub.add_parser("fleet", help="(internal) run simulated agents")
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--mtp", required=True)
    f.add_argument("--prefix", required=True)
    f.add_argument("--mqtt-url", default="")
    f.add_argument("--mqtt-version", default="3.1.1")
    f.add_argument("--topic", required=True)
    f.add_argument("--agent-topic", required=True)
    f.add_argument("--ws-url", required=True)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.mode == "fleet":
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oktoscripts.settings")
        import django

        django.setup()
        asyncio.run(fleet(arguments))
    else:
        asyncio.run(main(arguments))
