"""``python manage.py acs``: the TR-069 ACS (HTTP on port 7547, HTTPS on 7548 by default)."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from oktoscripts.bus.connection import nats_url
from oktoscripts.config import ConfigError
from oktoscripts.cwmp.app import start_acs
from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.metrics.collectors import devices_online
from oktoscripts.metrics.process import ProcessMetrics


class Command(BaseCommand):
    help = (
        "Run the TR-069 ACS: CPE sessions, the per-device RPC queue, Connection "
        "Requests and Inform events. Settings: OKTOSCRIPTS_ACS_* (see "
        "oktoscripts/cwmp/config.py); options below override them."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--host", help="listen address (OKTOSCRIPTS_ACS_HOST, 0.0.0.0)")
        parser.add_argument("--port", type=int, help="HTTP port (OKTOSCRIPTS_ACS_PORT, 7547)")
        parser.add_argument(
            "--tls-port", type=int, help="HTTPS port (OKTOSCRIPTS_ACS_TLS_PORT, 7548)"
        )
        parser.add_argument("--path", help="URL path CPEs post to (OKTOSCRIPTS_ACS_PATH, /)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            config = AcsConfig.from_settings()
            url = nats_url()
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if not settings.MONGO_URI:
            raise CommandError(
                "MONGO_URI: not set and no embedded MongoDB is running "
                "(start `python manage.py up` or set MONGO_URI)"
            )
        overrides = {k: options[k] for k in ("host", "port", "tls_port", "path") if options.get(k)}
        if "path" in overrides and not overrides["path"].startswith("/"):
            overrides["path"] = "/" + overrides["path"]
        config = AcsConfig(**{**config.__dict__, **overrides})
        asyncio.run(self._serve(config, url))

    async def _serve(self, config: AcsConfig, url: str) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        starting = asyncio.ensure_future(
            start_acs(
                config,
                nats_url=url,
                mongo_uri=settings.MONGO_URI,
                db_name=settings.MONGO_DB_NAME,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # stopped while NATS or MongoDB was still unreachable
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return
        stopping.cancel()
        try:
            app = starting.result()
        except OSError as exc:
            ports = "/".join(str(p) for p in (config.port, config.tls_port) if p is not None)
            raise CommandError(f"the ACS cannot start on {config.host}:{ports}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - NATS/MongoDB unreachable: one line
            raise CommandError(f"the ACS cannot start: {type(exc).__name__}: {exc}") from None
        metrics = ProcessMetrics("acs", app.acs.owner)
        await metrics.start(app.nc, (devices_online(app.acs.backend.registry, "cwmp"),))
        for scheme, port in (("http", app.port), ("https", app.tls_port)):
            if port is not None:
                self.stdout.write(f"ACS listening on {scheme}://{config.host}:{port}{config.path}")
        self.stdout.flush()
        try:
            await stop.wait()
        finally:
            await metrics.stop()
            await app.stop()
