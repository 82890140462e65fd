"""``python manage.py scheduler``: run the automations (schedules, bulk runs,
event triggers, deployed listeners) until stopped. Several may run at once
against the same databases: each tick, item, event and restart is done once."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from oktoscripts.bus.connection import connect


class Command(BaseCommand):
    help = (
        "Run schedules, bulk runs, event triggers and deployed listeners. Start one or "
        "more (each claims its work atomically); SIGTERM/Ctrl-C stops it."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--interval", type=float, default=0.5, help="seconds between passes (default 0.5)"
        )
        parser.add_argument("--id", default=None, help="process id shown on leases")

    def handle(self, *args: object, **options: object) -> None:
        from oktoscripts.management.commands.worker import check_database

        if options["interval"] <= 0:
            raise CommandError("--interval must be greater than 0")
        check_database()
        asyncio.run(self._serve(options["interval"], options["id"]))

    async def _serve(self, interval: float, owner: str | None) -> None:
        from oktoscripts.automations.lag import event_stream_lag
        from oktoscripts.automations.service import AutomationService
        from oktoscripts.metrics.process import ProcessMetrics

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            nc = await connect(f"scheduler {owner or ''}".strip(), first_attempts=20)
        except Exception as exc:  # noqa: BLE001 - one line for the user
            raise CommandError(f"cannot reach NATS at {settings.NATS_URL}: {exc}") from None
        registry = None
        if settings.MONGO_URI:
            from oktoscripts.devices.client import default_registry

            registry = await asyncio.to_thread(default_registry)
        service = AutomationService(nc, registry, interval=interval, owner=owner)
        metrics = ProcessMetrics("scheduler", service.owner)
        try:
            await service.start()
            await metrics.start(nc, (event_stream_lag(nc),))
            self.stdout.write(f"scheduler {service.owner} ready", ending="\n")
            self.stdout.flush()
            await stop.wait()
        finally:
            await metrics.stop()
            await service.stop()
            await nc.drain()
