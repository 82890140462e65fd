"""The platform processes that ``python manage.py up`` starts, one entry each.

``up`` first starts the services (the embedded nats-server and SecantusDB,
unless NATS_URL / MONGO_URI name real ones), then every enabled entry of
PLATFORM_PROCESSES, in order, each as its own supervised OS process. Adding a
process to ``up`` is one ProcessSpec in that tuple; it also runs alone in
production as ``python manage.py <command>`` (see README.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from oktoscripts.config import BASE_DIR
from oktoscripts.launcher.embedded.mongo import MongoServerConfig
from oktoscripts.launcher.embedded.nats import NatsServerConfig, nats_log_filter
from oktoscripts.launcher.embedded.ports import port_accepts
from oktoscripts.metrics.targets import with_ports

LogFilter = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Context:
    """What ``up`` knows when it builds a child's command line."""

    data_dir: Path
    web_host: str
    web_port: int
    # The service URLs every child gets in its environment:
    # NATS_URL, MONGO_URI and MQTT_URL (the embedded ones or the configured ones).
    endpoints: Mapping[str, str] = field(default_factory=dict)
    python: str = sys.executable


def always(ctx: Context) -> bool:
    return True


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised child: its name in the log, how to start it, and how to
    know it is ready (None: ready as soon as it is started). ``log_filter``, if
    given, makes a fresh filter for each start of the process: it gets every
    output line and returns it (perhaps shortened) or None to leave it out."""

    name: str
    argv: Callable[[Context], list[str]]
    env: Mapping[str, str] = field(default_factory=dict)
    enabled: Callable[[Context], bool] = always
    ready: Callable[[Context], Awaitable[bool]] | None = None
    log_filter: Callable[[], LogFilter] | None = None


def manage_py(*args: str) -> Callable[[Context], list[str]]:
    """The argv builder of a management command: ``python manage.py *args``."""

    def argv(ctx: Context) -> list[str]:
        return [ctx.python, str(BASE_DIR / "manage.py"), *args]

    return argv


def web_argv(ctx: Context) -> list[str]:
    return [
        ctx.python,
        "-m",
        "daphne",
        "-b",
        ctx.web_host,
        "-p",
        str(ctx.web_port),
        "oktoscripts.asgi:application",
    ]


async def web_listening(ctx: Context) -> bool:
    return await port_accepts(ctx.web_host, ctx.web_port)


async def acs_listening(ctx: Context) -> bool:
    from oktoscripts.cwmp.config import AcsConfig

    config = AcsConfig.from_settings()
    port = config.port if config.port is not None else config.tls_port
    return await port_accepts("127.0.0.1", port)


async def usp_listening(ctx: Context) -> bool:
    from django.conf import settings

    return await port_accepts(settings.USP_WS_HOST, settings.USP_WS_PORT)


# Each process but the web and the simulator gets a /metrics port (oktoscripts/metrics/targets.py).
PLATFORM_PROCESSES: tuple[ProcessSpec, ...] = with_ports(
    (
        # The web process: Django + Channels under daphne (HTTP and WebSocket).
        ProcessSpec("web", web_argv, ready=web_listening),
        # Workers run the scripts: one process per core (each holds thousands of runs).
        *(
            ProcessSpec(f"worker-{n}", manage_py("worker"))
            for n in range(1, (os.cpu_count() or 1) + 1)
        ),
        # The TR-069 ACS (oktoscripts/cwmp): HTTP on OKTOSCRIPTS_ACS_PORT (7547), HTTPS on
        # OKTOSCRIPTS_ACS_TLS_PORT (7548).
        ProcessSpec("acs", manage_py("acs"), ready=acs_listening),
        # Automations: schedules, bulk runs, event triggers, deployed listeners.
        ProcessSpec("scheduler", manage_py("scheduler")),
        # The TR-369 controller (oktoscripts/usp): MQTT, and WebSocket on OKTOSCRIPTS_USP_WS_PORT.
        ProcessSpec("usp", manage_py("usp"), ready=usp_listening),
        # Device twins (oktoscripts/twins): snapshots devices, runs their simulated twins,
        # and the demo twins of the snapshots shipped in oktoscripts/twins/snapshots.
        ProcessSpec("twins", manage_py("twins", "run", "--demo")),
        # A few simulated devices of each protocol, so the IDE has devices to script against.
        ProcessSpec("simulate", manage_py("simulate", "--cwmp", "3", "--usp", "3")),
    )
)


def service_processes(
    nats: NatsServerConfig | None, mongo: MongoServerConfig | None
) -> list[ProcessSpec]:
    """The embedded servers ``up`` starts before the platform processes. Their
    ports are chosen once, so a restarted server comes back at the same URL."""
    specs = []
    if nats is not None:
        specs.append(
            ProcessSpec(
                "nats",
                lambda ctx: nats.command(),
                ready=_port_ready(nats.host, nats.port),
                log_filter=nats_log_filter,
            )
        )
    if mongo is not None:
        specs.append(
            ProcessSpec(
                "mongo", lambda ctx: mongo.command(), ready=_port_ready(mongo.host, mongo.port)
            )
        )
    return specs


def _port_ready(host: str, port: int) -> Callable[[Context], Awaitable[bool]]:
    async def ready(ctx: Context) -> bool:
        return await port_accepts(host, port)

    return ready
