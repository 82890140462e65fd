"""Running the embedded servers as plain subprocesses (tests, benchmarks, tools)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

from oktoscripts.launcher.embedded.mongo import MongoServerConfig
from oktoscripts.launcher.embedded.nats import NatsServerConfig
from oktoscripts.launcher.embedded.ports import free_port, wait_for_port
from oktoscripts.launcher.supervisor.proctree import die_with_parent


class EmbeddedServices:
    """Starts the embedded NATS and/or MongoDB servers under ``data_dir`` and
    stops them (and only them) on ``stop()``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.nats: NatsServerConfig | None = None
        self.mongo: MongoServerConfig | None = None
        self._procs: list[subprocess.Popen] = []

    def start_nats(self, timeout: float = 20, mqtt_tls: tuple[Path, Path] | None = None) -> str:
        """The NATS URL; ``self.nats.mqtt_url`` is its MQTT listener (TLS with the
        certificate and key ``mqtt_tls`` when given), logins answered by whoever
        runs the controller with ``self.nats.auth_file``."""
        self.nats = NatsServerConfig(
            self.data_dir / "nats", free_port(), free_port(), mqtt_tls=mqtt_tls
        )
        self._spawn(self.nats.command(), "nats-server", self.nats.port, timeout)
        return self.nats.url

    def start_mongo(self, timeout: float = 30) -> str:
        self.mongo = MongoServerConfig(self.data_dir / "mongo" / "data", free_port())
        self._spawn(self.mongo.command(), "secantusdb", self.mongo.port, timeout)
        return self.mongo.uri

    def _spawn(self, cmd: list[str], name: str, port: int, timeout: float) -> None:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        # The server dies with this process (a test run killed on a timeout leaves
        # no server behind); but only when started from the main thread, as the
        # kernel takes the end of the starting *thread* for the parent's death.
        on_main_thread = threading.current_thread() is threading.main_thread()
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent() if on_main_thread else None,
        )
        self._procs.append(proc)
        if not wait_for_port("127.0.0.1", port, timeout):
            self.stop()
            raise RuntimeError(
                f"embedded {name} did not start within {timeout}s "
                f"(see {self.data_dir / (name + '.log')})"
            )

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()
