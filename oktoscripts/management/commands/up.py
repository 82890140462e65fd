"""``python manage.py up``: the whole platform on one machine, under one supervisor."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.management.base import BaseCommand

from oktoscripts import config
from oktoscripts.config import ConfigError
from oktoscripts.launcher import preflight
from oktoscripts.launcher.platform import ADMIN_USERNAME, NAME, Platform, Services
from oktoscripts.launcher.processes import PLATFORM_PROCESSES, Context
from oktoscripts.launcher.supervisor.output import LogOutput

WEB_HOST = "127.0.0.1"


class Command(BaseCommand):
    help = (
        "Start everything the platform needs on this machine: the embedded NATS and "
        "MongoDB-compatible servers (unless NATS_URL / MONGO_URI are set), migrations, "
        "the web process and the other platform processes. Ctrl-C stops it all."
    )

    def handle(self, *args: object, **options: object) -> None:
        data_dir = Path(settings.DATA_DIR)
        web_port = config.value("OKTOSCRIPTS_WEB_PORT")
        # From the environment, not from settings: settings may hold the URLs a
        # previous ``up`` on this data directory published.
        nats_url = config.value("NATS_URL")
        mongo_uri = config.value("MONGO_URI")
        mqtt_url = config.value("MQTT_URL")

        with only_up_on(data_dir):
            preflight.run_checks(preflight_checks(web_port, nats_url, mongo_uri))
            services = Services.plan(data_dir, nats_url, mongo_uri, mqtt_url)
            ctx = Context(data_dir, WEB_HOST, web_port, services.child_env())
            names = [NAME, "migrate", "nats", "mongo", *(spec.name for spec in PLATFORM_PROCESSES)]
            status = asyncio.run(Platform(ctx, services, LogOutput(names)).run())
        sys.exit(status)


def preflight_checks(web_port: int, nats_url: str, mongo_uri: str) -> list:
    """(setting, check) for everything configured that must answer before ``up`` starts."""
    from oktoscripts.cwmp.config import AcsConfig

    acs = AcsConfig.from_settings()
    usp_port = settings.USP_WS_PORT
    checks = [
        (
            "OKTOSCRIPTS_WEB_PORT",
            lambda: preflight.check_port_free("OKTOSCRIPTS_WEB_PORT", WEB_HOST, web_port),
        ),
    ]
    for setting, port in (
        ("OKTOSCRIPTS_ACS_PORT", acs.port),
        ("OKTOSCRIPTS_ACS_TLS_PORT", acs.tls_port),
    ):
        if port is not None:
            checks.append(
                (setting, lambda s=setting, p=port: preflight.check_port_free(s, acs.host, p))
            )
    if usp_port:
        checks.append(
            (
                "OKTOSCRIPTS_USP_WS_PORT",
                lambda: preflight.check_port_free(
                    "OKTOSCRIPTS_USP_WS_PORT", settings.USP_WS_HOST, usp_port
                ),
            )
        )
    admin_password = config.value("OKTOSCRIPTS_ADMIN_PASSWORD")
    if admin_password:
        checks.append(
            (
                "OKTOSCRIPTS_ADMIN_PASSWORD",
                lambda: preflight.check_admin_password(admin_password, ADMIN_USERNAME),
            )
        )
    if nats_url:
        checks.append(("NATS_URL", lambda: preflight.check_nats(nats_url)))
    if mongo_uri:
        checks.append(("MONGO_URI", lambda: preflight.check_mongo(mongo_uri)))
    database = "DATABASE_URL" if config.is_set("DATABASE_URL") else "OKTOSCRIPTS_DATA_DIR"
    checks.append((database, lambda: preflight.check_database(database)))
    return checks


@contextmanager
def only_up_on(data_dir: Path):  # noqa: ANN201 - a context manager
    """Hold the data directory for this ``up``: a second one would share its files."""
    path = config.up_lock_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path, "a+")  # noqa: SIM115 - held for the whole run
    try:
        if not _take(lock):
            lock.seek(0)
            owner = lock.read().strip() or "?"
            raise ConfigError(
                "OKTOSCRIPTS_DATA_DIR",
                f"another `manage.py up` (pid {owner}) is running on {data_dir}; "
                "stop it first or use another data directory",
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield
    finally:
        lock.close()


def _take(lock: IO[str]) -> bool:
    """Lock exclusively; a few tries, as a command reading the endpoints holds
    the lock shared for an instant."""
    for _ in range(10):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(0.05)
    return False
