"""The failover scenario (README "Production"): a bulk run over simulated CPEs
on the production topology, with one NATS node and one worker crashing in
the middle of it.

Everything goes the way users and devices go: REST and the run console's
WebSocket through the one web port (the round-robin proxy in front of the
two web processes), the CPEs over TR-069 to the ACS. The bulk run's script
makes one SetParameterValues per device with a ParameterKey of its own, and
each simulated CPE counts the changes it applied by ParameterKey: that count,
not the platform's bookkeeping, says whether a device was changed once.

While the bulk run goes, another run prints a line every 100 ms and its
console is watched over the WebSocket. The worker that crashes is the one not
running the watched run; the NATS node that crashes is the one the other
worker is connected to (so the worker left must move to another node, with
the watched run's output), after the leaders of the platform's streams and of
the run queue's consumer were moved onto it (so JetStream must elect new
ones). Which other processes were connected to it is a matter of chance
(each process picks a node at random) and is reported.

``tests/cluster/test_failover.py`` checks the outcome; ``bench/cluster.py``
prints its figures next to the same bulk run without failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import nats

from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions
from tests.cluster.natscluster import move_leader
from tests.cluster.proxy import RoundRobinProxy
from tests.cluster.topology import ADMIN, Topology

SERIAL_PREFIX = "CLUSTER"

# One SetParameterValues per device; the ParameterKey names the bulk run.
BULK_SCRIPT = """
local serial = args.serial
local device = get_device(serial)
local root = device.data_model == "TR-181" and "Device." or "InternetGatewayDevice."
local r = send_cwmp_message(serial, "<cwmp:SetParameterValues><ParameterList>"
  .. "<ParameterValueStruct><Name>" .. root .. "ManagementServer.PeriodicInformInterval</Name>"
  .. "<Value xsi:type=\\"xsd:unsignedInt\\">300</Value></ParameterValueStruct></ParameterList>"
  .. "<ParameterKey>" .. args.key .. "</ParameterKey></cwmp:SetParameterValues>", 1)
if r ~= true then error("SetParameterValues failed: " .. json_encode(r)) end
return serial
"""

# The run whose console is watched: a line every 100 ms until cancelled.
WATCHED_SCRIPT = """
local n = 0
while true do
  n = n + 1
  print("tick " .. n)
  sleep(0.1)
end
"""

RUN_ACTIVE = ("queued", "running", "listening")


class WebClient:
    """A signed-in browser session against the web port (sync: use it from a thread)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str:
        return next((c.value for c in self.cookies if c.name == name), "")

    def login(self, username: str, password: str) -> None:
        self.opener.open(f"{self.base_url}/login/", timeout=30).read()
        form = urllib.parse.urlencode(
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.cookie("csrftoken"),
                "next": "/",
            }
        ).encode()
        self.opener.open(
            urllib.request.Request(
                f"{self.base_url}/login/", form, headers={"Referer": f"{self.base_url}/login/"}
            ),
            timeout=30,
        ).read()
        if not self.cookie("sessionid"):
            raise RuntimeError(f"could not sign in as {username}")

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken")},
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None


@dataclass
class Console:
    """What the watched run's console received, and when."""

    lines: list[tuple[int, float]] = field(default_factory=list)  # (seq, monotonic time)
    end: dict | None = None
    closed: str = ""
    first_line: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def seqs(self) -> list[int]:
        return [seq for seq, _ in self.lines]

    def lines_after(self, moment: float) -> int:
        return sum(1 for _, at in self.lines if at > moment)

    def longest_silence(self, since: float) -> float:
        """The longest time without a line after ``since`` (until the last line)."""
        times = [since] + [at for _, at in self.lines if at > since]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


async def watch_console(url: str, cookie: str, origin: str, console: Console) -> None:
    import websockets

    try:
        async with websockets.connect(
            url, additional_headers={"Cookie": cookie, "Origin": origin}, max_size=None
        ) as ws:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "lines":
                    now = time.monotonic()
                    console.lines += [(line["seq"], now) for line in message["lines"]]
                    console.first_line.set()
                elif message["type"] == "end":
                    console.end = message
                    break
    except Exception as exc:  # noqa: BLE001 - the outcome says what happened
        console.closed = f"{type(exc).__name__}: {exc}"
    finally:
        console.ended.set()


@dataclass
class Failure:
    """What crashes, and when it did (monotonic; 0 until then)."""

    nats_node: str
    worker: str
    at: float
    leaders_moved: dict[str, str]  # stream -> its leader just before
    clients_on_node: list[str]  # NATS connections of the node, by name


@dataclass
class BulkOutcome:
    key: str
    devices: int
    seconds: float
    status: str
    items: dict[str, int]
    applied: Counter  # serial -> changes with this bulk run's ParameterKey
    runs_active: int  # runs of the installation still queued or running at the end
    errors: Counter  # why items failed or were lost, with how many of each
    failure: Failure | None = None
    console: Console | None = None

    @property
    def lost(self) -> int:
        """Devices the bulk run never changed."""
        return sum(1 for n in self.applied.values() if n == 0)

    @property
    def doubled(self) -> int:
        """Devices changed more than once."""
        return sum(1 for n in self.applied.values() if n > 1)


class Scenario:
    """The topology started, the CPEs registered, an admin signed in through the proxy."""

    def __init__(
        self, topology: Topology, devices: int, concurrency: int = 50, freeze: bool = False
    ) -> None:
        self.topology = topology
        self.devices = devices
        self.concurrency = concurrency
        # The NATS node falls silent (SIGSTOP: its machine vanished) rather than
        # crashing (SIGKILL: its connections reset at once).
        self.freeze = freeze
        self.proxy = RoundRobinProxy([("127.0.0.1", p) for p in topology.web_ports])
        self.fleet = CpeFleet(
            devices,
            CpeOptions(acs_url=f"http://127.0.0.1:{topology.acs_port}/", auth="none"),
            prefix=SERIAL_PREFIX,
        )
        self.web = WebClient("")

    async def __aenter__(self) -> Scenario:
        await self.proxy.start()
        self.web = WebClient(self.proxy.base_url)
        await asyncio.to_thread(self.web.login, ADMIN, self.topology.admin_password)
        await self.fleet.start(arrivals_per_s=200)
        deadline = time.monotonic() + 120
        while not all(cpe.last_session_ok for cpe in self.fleet.cpes):
            if time.monotonic() > deadline:
                registered = sum(1 for cpe in self.fleet.cpes if cpe.last_session_ok)
                raise RuntimeError(f"only {registered} of {self.devices} CPEs registered")
            await asyncio.sleep(0.2)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.fleet.stop()
        await self.proxy.stop()

    async def api(self, method: str, path: str, body: dict | None = None) -> Any:
        return await asyncio.to_thread(self.web.api, method, path, body)

    async def script(self, name: str, content: str) -> int:
        return (await self.api("POST", "/api/scripts", {"name": name, "content": content}))["id"]

    # -- the bulk run ----------------------------------------------------------

    async def bulk_run(self, key: str, *, crash: bool, at_fraction: float = 0.4) -> BulkOutcome:
        """A bulk run changing every CPE once (ParameterKey ``key``); with ``crash``,
        a NATS node and a worker crash once ``at_fraction`` of it is done."""
        script_id = await self.script(f"{key}.lua", BULK_SCRIPT)
        console = watched = failure = None
        if crash:
            console, watched = await self._watch_a_run()
            failure = await self._prepare_crash(watched)
        started = time.monotonic()
        bulk = await self.api(
            "POST",
            "/api/bulk-runs",
            {
                "script_id": script_id,
                "args": {"key": key},
                "concurrency": self.concurrency,
                "device_filter": {"text": SERIAL_PREFIX},
            },
        )
        crash_when_done = at_fraction * self.devices
        while bulk["status"] not in ("finished", "stopped"):
            if failure and not failure.at and bulk["progress"]["done"] >= crash_when_done:
                self._crash(failure)
            if time.monotonic() - started > 600:
                break
            await asyncio.sleep(0.25)  # no event says how far a bulk run is: its page is read
            bulk = await self.api("GET", f"/api/bulk-runs/{bulk['id']}")
        seconds = time.monotonic() - started
        errors = Counter()
        for status in ("failed", "lost"):
            failed = await self.api("GET", f"/api/bulk-runs/{bulk['id']}?status={status}")
            errors.update(f"{status}: {item['error'][:160]}" for item in failed["items"])
        if watched is not None:
            await self.api("POST", f"/api/runs/{watched}/cancel")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(console.ended.wait(), 60)
        return BulkOutcome(
            key=key,
            devices=self.devices,
            seconds=seconds,
            status=bulk["status"],
            items={k: v for k, v in bulk["progress"]["by_status"].items() if v},
            applied=Counter({cpe.serial: cpe.applied[key] for cpe in self.fleet.cpes}),
            runs_active=await self._runs_active(),
            errors=errors,
            failure=failure,
            console=console,
        )

    async def _runs_active(self) -> int:
        rows = await asyncio.to_thread(
            self.topology.database.query,
            "SELECT count(*) FROM runs_run WHERE status = ANY(%s)",
            list(RUN_ACTIVE),
        )
        return rows[0][0]

    # -- the watched console ------------------------------------------------------

    async def _watch_a_run(self) -> tuple[Console, str]:
        script_id = await self.script("watched.lua", WATCHED_SCRIPT)
        run = await self.api("POST", "/api/runs", {"script_id": script_id})
        console = Console()
        ws_url = self.proxy.base_url.replace("http://", "ws://") + f"/ws/runs/{run['id']}/"
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.web.cookies)
        asyncio.get_running_loop().create_task(
            watch_console(ws_url, cookie, self.proxy.base_url, console)
        )
        await asyncio.wait_for(console.first_line.wait(), 60)
        return console, run["id"]

    # -- the crash ------------------------------------------------------------------

    async def _prepare_crash(self, watched_run: str) -> Failure:
        """Choose what crashes (the module's docstring says why) and move the
        JetStream leaders onto the NATS node that will."""
        topology = self.topology
        rows = await asyncio.to_thread(
            topology.database.query, "SELECT worker_id FROM runs_run WHERE id = %s", watched_run
        )
        spared = rows[0][0]
        worker = next(n for n in topology.processes if n.startswith("worker-") and n != spared)
        node = await asyncio.to_thread(topology.nats.client_node, f"worker {spared}")
        leaders = await self._move_leaders(node)
        clients = await asyncio.to_thread(self._clients_on, node)
        return Failure(node, worker, 0.0, leaders, clients)

    def _crash(self, failure: Failure) -> None:
        failure.at = time.monotonic()
        if self.freeze:
            self.topology.nats.freeze(failure.nats_node)
        else:
            self.topology.nats.kill(failure.nats_node)
        self.topology.processes[failure.worker].kill()

    def _clients_on(self, node: str) -> list[str]:
        connections = self.topology.nats.node(node).monitor("connz?limit=1024")["connections"]
        return sorted(c.get("name", "") for c in connections or [])

    async def _move_leaders(self, node: str) -> dict[str, str]:
        """Make ``node`` the leader of every stream of the platform and of the
        run queue's consumer, so that its crash makes JetStream elect new ones."""
        other = next(n for n in self.topology.nats.nodes if n.name != node)
        nc = await nats.connect(other.url)
        try:
            js = nc.jetstream()
            prefix = self.topology.prefix.upper()
            streams = [s.config.name for s in await js.streams_info() if prefix in s.config.name]
            for name in streams:
                await move_leader(nc, node, name)
            await move_leader(nc, node, f"{prefix}_RUNS", "workers")
            return {name: (await js.stream_info(name)).cluster.leader for name in streams}
        finally:
            await nc.close()
