"""Bringing the whole platform up on one machine (``python manage.py up``).

The order: the services (embedded nats-server and SecantusDB, started at once)
while the Django database is migrated; then the platform processes of
oktoscripts/processes.py; then, once /healthz is green, the URL to open.
Stopping goes the other way round.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from oktoscripts import config, pki
from oktoscripts.launcher.embedded.mongo import MongoServerConfig
from oktoscripts.launcher.embedded.nats import NatsServerConfig
from oktoscripts.launcher.embedded.ports import free_port
from oktoscripts.launcher.processes import PLATFORM_PROCESSES, Context, service_processes
from oktoscripts.launcher.supervisor import StartupError, Supervisor
from oktoscripts.launcher.supervisor.output import LogOutput
from oktoscripts.metrics import conf
from oktoscripts.metrics.targets import write_targets

SERVICE_START_TIMEOUT = 60.0
PROCESS_START_TIMEOUT = 60.0
HEALTHY_TIMEOUT = 60.0
ADMIN_USERNAME = "admin"
NAME = "up"


@dataclass
class Services:
    """The service URLs the platform uses, and the embedded servers to start for them."""

    nats_url: str
    mongo_uri: str
    mqtt_url: str
    nats: NatsServerConfig | None = None
    mongo: MongoServerConfig | None = None

    @classmethod
    def plan(cls, data_dir: Path, nats_url: str, mongo_uri: str, mqtt_url: str) -> Services:
        """Embedded servers for the URLs left empty, on ports chosen now and kept
        for the life of this ``up`` (a restarted server comes back at the same URL)."""
        nats = mongo = None
        if not nats_url:
            # The MQTT listener faces devices: TLS with the platform's certificate.
            tls = pki.tls_files()
            nats = NatsServerConfig(
                data_dir / "nats", free_port(), free_port(), mqtt_tls=(tls.cert, tls.key)
            )
            nats_url = nats.url
            mqtt_url = mqtt_url or nats.mqtt_url
        if not mongo_uri:
            mongo = MongoServerConfig(data_dir / "mongo" / "data", free_port())
            mongo_uri = mongo.uri
        return cls(nats_url, mongo_uri, mqtt_url, nats, mongo)

    def endpoints(self) -> dict[str, str]:
        urls = {"NATS_URL": self.nats_url, "MONGO_URI": self.mongo_uri, "MQTT_URL": self.mqtt_url}
        return {name: url for name, url in urls.items() if url}

    def child_env(self) -> dict[str, str]:
        """The endpoints; for the embedded broker, where the USP controller finds the
        secrets to answer its MQTT logins, and its MQTT version: nats-server speaks
        MQTT 3.1.1 only and logs an error for each MQTT 5 CONNECT that "auto" would try."""
        env = self.endpoints()
        embedded_mqtt = self.nats is not None and self.mqtt_url == self.nats.mqtt_url
        if embedded_mqtt:
            env["OKTOSCRIPTS_EMBEDDED_MQTT_AUTH"] = str(self.nats.auth_file)
        if embedded_mqtt and not config.is_set("OKTOSCRIPTS_USP_MQTT_VERSION"):
            env["OKTOSCRIPTS_USP_MQTT_VERSION"] = "3.1.1"
        return env


class Platform:
    """One run of ``up``: start, serve until SIGINT/SIGTERM, stop."""

    def __init__(self, ctx: Context, services: Services, output: LogOutput) -> None:
        self.ctx = ctx
        self.services = services
        self.output = output
        self.run_dir = config.endpoints_file(ctx.data_dir).parent
        self.supervisor = Supervisor(output, pids_file=self.run_dir / "pids.json")
        self.admin_note: str | None = None  # how to log in, on the very first start
        self._stop = asyncio.Event()
        self._stop_requests = 0

    def say(self, text: str) -> None:
        self.output.line(NAME, text)

    @property
    def url(self) -> str:
        return f"http://{self.ctx.web_host}:{self.ctx.web_port}/"

    async def run(self) -> int:
        """The exit status: 0 after a requested stop, 1 when start-up failed."""
        loop = asyncio.get_running_loop()
        # SIGHUP: the terminal that ran ``up`` was closed.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._request_stop, sig)
        self.supervisor.begin()
        startup = asyncio.create_task(self._start())
        stop = asyncio.create_task(self._stop.wait())
        status = 0
        try:
            await asyncio.wait({startup, stop}, return_when=asyncio.FIRST_COMPLETED)
            if startup.done() and startup.exception() is not None:
                raise startup.exception()
            await stop
        except StartupError as exc:
            self.say(f"start-up failed: {exc}")
            status = 1
        finally:
            startup.cancel()
            stop.cancel()
            # Whatever ended the start-up was handled above: only wait for the tasks here.
            await asyncio.gather(startup, stop, return_exceptions=True)
            self.say("stopping")
            await self.supervisor.stop()
            config.endpoints_file(self.ctx.data_dir).unlink(missing_ok=True)
            self.say("stopped")
        return status

    def _request_stop(self, sig: int) -> None:
        self._stop_requests += 1
        if self._stop_requests == 1:
            self.say(f"{signal.Signals(sig).name}: stopping everything (again to kill at once)")
            self._stop.set()
        else:
            self.say("killing everything now")
            self.supervisor.kill()

    async def _start(self) -> None:
        services = service_processes(self.services.nats, self.services.mongo)
        if services:
            self.say("starting " + " and ".join(spec.name for spec in services))
        # The Django database needs neither service: migrate while they start.
        await asyncio.gather(
            self.supervisor.start_stage(services, self.ctx, SERVICE_START_TIMEOUT),
            asyncio.to_thread(self._prepare_database),
            asyncio.to_thread(self._prepare_tls),
        )
        self._publish_endpoints()
        for name, url in self.services.endpoints().items():
            self.say(f"{name}={config.redact(url)}")
        await self.supervisor.start_stage(PLATFORM_PROCESSES, self.ctx, PROCESS_START_TIMEOUT)
        await self._announce_when_healthy()

    def _prepare_database(self) -> None:
        from django.core.management import call_command
        from django.db import connection

        try:
            call_command("migrate", interactive=False, verbosity=1, stdout=LineWriter(self.output))
            password = create_first_admin()
        finally:
            connection.close()
        if password is None:
            return
        if config.is_set("OKTOSCRIPTS_ADMIN_PASSWORD"):
            self.admin_note = f"log in as {ADMIN_USERNAME} with OKTOSCRIPTS_ADMIN_PASSWORD"
        else:
            self.admin_note = (
                f"log in as {ADMIN_USERNAME}, password {password} (shown on this first start only)"
            )
        self.say(f"created the user {ADMIN_USERNAME}: {self.admin_note}")

    def _prepare_tls(self) -> None:
        """The TLS certificates of the device-facing ports, made now (on the very
        first start) rather than by whichever process needs them first."""
        files = pki.tls_files()
        self.say(f"TLS: devices verify the platform with the CA {files.ca}")

    def _publish_endpoints(self) -> None:
        """Tell processes started by hand beside this ``up`` where the services are."""
        path = config.endpoints_file(self.ctx.data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.touch(mode=0o600)  # MQTT_URL holds the controller's MQTT password
        temporary.write_text(json.dumps(self.services.endpoints(), indent=1))
        temporary.replace(path)
        if conf.up_base_port() is not None:
            write_targets(path.parent, PLATFORM_PROCESSES, self.ctx.web_host, self.ctx.web_port)

    async def _announce_when_healthy(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HEALTHY_TIMEOUT
        status, body = await asyncio.to_thread(fetch, self.url + "healthz")
        while status != 200 and loop.time() < deadline:
            await asyncio.sleep(0.2)
            status, body = await asyncio.to_thread(fetch, self.url + "healthz")
        if status == 200:
            lines = [f"oktoscripts is ready: open {self.url}"]
        else:
            self.say(f"/healthz still answers {status}: {body}")
            lines = [f"oktoscripts is up, but /healthz is not green: open {self.url}"]
        if self.admin_note is not None:
            lines.append(self.admin_note)
        lines.append("Ctrl-C stops everything")
        rule = "=" * max(len(line) for line in lines)
        for line in (rule, *lines, rule):
            self.say(line)


def create_first_admin() -> str | None:
    """On the very first start (no superuser yet), create ``admin``; its password."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    if (
        users.objects.filter(is_superuser=True).exists()
        or users.objects.filter(username=ADMIN_USERNAME).exists()
    ):
        return None
    password = config.value("OKTOSCRIPTS_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    users.objects.create_superuser(ADMIN_USERNAME, "", password)
    return password


def fetch(url: str) -> tuple[int, str]:
    """The status and body of a GET; 0 and the reason when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, ValueError) as exc:
        return 0, str(exc)


class LineWriter:
    """A file-like object for Django's command output: each line goes to the log as ``migrate``."""

    def __init__(self, output: LogOutput, name: str = "migrate") -> None:
        self.output = output
        self.name = name
        output.widen(name)
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if line.strip():
                self.output.line(self.name, line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
