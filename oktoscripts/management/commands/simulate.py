"""``python manage.py simulate --cwmp N --usp M``: a fleet of simulated devices."""

from __future__ import annotations

import asyncio
import signal

from django.core.management.base import BaseCommand, CommandError

from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions


class Command(BaseCommand):
    help = (
        "Simulate devices over the real protocols: --cwmp N TR-069 CPEs (TR-098 and "
        "TR-181) talking to the ACS, answering Connection Requests; --usp M USP agents "
        "talking to the USP controller."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--cwmp", type=int, default=0, help="number of CWMP CPEs")
        parser.add_argument("--usp", type=int, default=0, help="number of USP agents")
        parser.add_argument(
            "--usp-mtp",
            choices=("mqtt", "websocket", "mixed"),
            default="mqtt",
            help="MTP of the USP agents (default mqtt)",
        )
        parser.add_argument(
            "--acs-url",
            default=None,
            help="ACS URL (default: http://127.0.0.1:<OKTOSCRIPTS_ACS_PORT><OKTOSCRIPTS_ACS_PATH>)",
        )
        parser.add_argument("--prefix", default="OKTOSIM", help="serial number prefix")
        parser.add_argument("--first", type=int, default=0, help="first serial index")
        parser.add_argument(
            "--username",
            default="oktosim",
            help="credential the CPEs authenticate with (created if missing)",
        )
        parser.add_argument(
            "--password", default=None, help="its password (default: generated and stored once)"
        )
        parser.add_argument("--auth", choices=("digest", "basic", "none"), default="digest")
        parser.add_argument(
            "--interval", type=int, default=300, help="periodic inform interval, seconds"
        )
        parser.add_argument(
            "--rate", type=float, default=50.0, help="first Informs per second at start"
        )
        parser.add_argument(
            "--cr-port",
            type=int,
            default=0,
            help="port of the Connection Request server (default: any)",
        )

    def handle(self, *args: object, **options: object) -> None:
        if options["cwmp"] < 0 or options["usp"] < 0:
            raise CommandError("--cwmp and --usp must be >= 0")
        if options["cwmp"] == 0 and options["usp"] == 0:
            raise CommandError("nothing to simulate: give --cwmp N and/or --usp M")
        config = AcsConfig.from_settings()
        acs_url = options["acs_url"] or f"http://127.0.0.1:{config.port}{config.path}"
        password = options["password"]
        if options["cwmp"] and options["auth"] != "none":
            password = self._credential(options["username"], password)
        cpe_options = CpeOptions(
            acs_url=acs_url,
            username=options["username"],
            password=password or "",
            auth=options["auth"],
            periodic_interval=options["interval"],
        )
        asyncio.run(self._run(options, cpe_options))

    def _credential(self, username: str, password: str | None) -> str:
        """Make sure the platform knows the fleet's credential (a product feature:
        simulated devices must get in on a fresh install)."""
        from django.conf import settings

        from oktoscripts.devices.client import default_credentials

        if password is None:
            secret_file = settings.DATA_DIR / "sim_cwmp_password"
            if secret_file.exists():
                password = secret_file.read_text().strip()
            else:
                import secrets

                password = secrets.token_urlsafe(16).replace(".", "")
                secret_file.parent.mkdir(parents=True, exist_ok=True)
                secret_file.write_text(password)
                secret_file.chmod(0o600)
        try:
            default_credentials().create_or_update(username, password)
        except Exception as exc:  # noqa: BLE001 - say what is wrong in one line
            raise CommandError(f"cannot store the simulator's credential: {exc}") from None
        return password

    async def _run(self, options: dict, cpe_options: CpeOptions) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        fleet = None
        usp_task = None
        if options["cwmp"]:
            fleet = CpeFleet(
                options["cwmp"],
                cpe_options,
                prefix=options["prefix"],
                first_index=options["first"],
                cr_port=options["cr_port"],
            )
            await fleet.start(arrivals_per_s=options["rate"])
            self.stdout.write(
                f"simulating {options['cwmp']} CWMP CPEs against {cpe_options.acs_url} "
                f"(connection requests on {fleet.cr_server.base_url})"
            )
        if options["usp"]:
            from oktoscripts.sim.usp_fleet import run_usp_fleet

            usp_task = asyncio.ensure_future(run_usp_fleet(options["usp"], mtp=options["usp_mtp"]))
            self.stdout.write(f"simulating {options['usp']} USP agents ({options['usp_mtp']})")
        self.stdout.flush()
        try:
            if usp_task is not None:
                await asyncio.wait(
                    [usp_task, asyncio.ensure_future(stop.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if usp_task.done() and usp_task.exception() is not None:
                    raise CommandError(f"USP agents stopped: {usp_task.exception()}")
            else:
                await stop.wait()
        finally:
            if usp_task is not None:
                usp_task.cancel()
                await asyncio.gather(usp_task, return_exceptions=True)
            if fleet is not None:
                await fleet.stop()
