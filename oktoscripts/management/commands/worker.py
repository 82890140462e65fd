"""``python manage.py worker``: take runs from the queue and run them until stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from django.conf import settings
from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections

from oktoscripts.bus.connection import connect
from oktoscripts.metrics.process import ProcessMetrics
from oktoscripts.runs.models import Run
from oktoscripts.runs.services import build_services, close_services
from oktoscripts.runs.worker import Worker, WorkerOptions

# Exit status of a worker that stopped to be replaced (EX_TEMPFAIL): `up`
# restarts it; so does systemd with Restart=on-failure.
EXIT_RESTART = 75


def check_database() -> None:
    try:
        Run.objects.exists()
    except DatabaseError as exc:
        raise CommandError(
            f"the database is not ready ({exc}); run `python manage.py migrate` first"
        ) from None
    finally:
        connections.close_all()


class Command(BaseCommand):
    help = (
        "Run scripts from the run queue: many at once in one process. Start several "
        "(on several machines) to scale out. SIGTERM/Ctrl-C stops taking runs, waits "
        "--grace seconds for the ones held, then cancels the rest."
    )

    # Not the URL and template checks: they import the web process's views,
    # the REST API and the IDE (20 MB a worker never uses); `check` and the
    # web process run them.
    requires_system_checks = [Tags.models]

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        defaults = WorkerOptions.from_settings()
        parser.add_argument(
            "--concurrency",
            type=int,
            default=defaults.concurrency,
            help="runs held at once (default %(default)s, OKTOSCRIPTS_WORKER_CONCURRENCY)",
        )
        parser.add_argument(
            "--lua-threads",
            type=int,
            default=defaults.lua_threads,
            help="threads executing Lua (default %(default)s, OKTOSCRIPTS_WORKER_LUA_THREADS)",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=5.0,
            help="seconds held runs get to end on shutdown (default 5)",
        )
        parser.add_argument("--id", default=None, help="worker id (default host-pid-random)")

    def handle(self, *args: object, **options: object) -> None:
        if options["concurrency"] < 1 or options["lua_threads"] < 1:
            raise CommandError("--concurrency and --lua-threads must be at least 1")
        defaults = WorkerOptions.from_settings()
        worker_options = WorkerOptions(
            concurrency=options["concurrency"],
            lua_threads=options["lua_threads"],
            heartbeat_s=defaults.heartbeat_s,
            lost_after_s=defaults.lost_after_s,
            stuck_restart_s=defaults.stuck_restart_s,
        )
        check_database()
        restart = asyncio.run(self._serve(worker_options, options["id"], options["grace"]))
        if restart:
            # Not sys.exit: interpreter shutdown would wait on the stuck thread.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_RESTART)

    async def _serve(
        self, worker_options: WorkerOptions, worker_id: str | None, grace: float
    ) -> bool:
        """Serve until SIGTERM/SIGINT; True when the worker must be restarted."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            nc = await connect(f"worker {worker_id or ''}".strip(), first_attempts=20)
        except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
            raise CommandError(f"cannot reach NATS at {settings.NATS_URL}: {exc}") from None
        services = build_services(nc)
        worker = Worker(nc, services, worker_options, worker_id)
        metrics = ProcessMetrics("worker", worker.worker_id)
        try:
            await worker.start()
            await metrics.start(nc)
            self.stdout.write(f"worker {worker.worker_id} ready", ending="\n")
            self.stdout.flush()
            restart = loop.create_task(worker.needs_restart.wait())
            await asyncio.wait(
                [loop.create_task(stop.wait()), restart], return_when=asyncio.FIRST_COMPLETED
            )
            await worker.stop(grace)
            return restart.done()
        finally:
            await metrics.stop()
            close_services(services)
            await nc.drain()
