"""``python manage.py simulate --cwmp N --usp M``: a fleet of simulated devices."""

from __future__ import annotations

import asyncio
import secrets
import signal

from django.core.management.base import BaseCommand, CommandError

from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions, FleetCredentials


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
            help="ACS URL (default: https://127.0.0.1:<OKTOSCRIPTS_ACS_TLS_PORT><PATH> when "
            "the ACS has an HTTPS port, else http://127.0.0.1:<OKTOSCRIPTS_ACS_PORT><PATH>)",
        )
        parser.add_argument(
            "--ca-file",
            default=None,
            help="CA bundle an https:// ACS URL is checked with (default: the platform's CA)",
        )
        parser.add_argument("--prefix", default="OKTOSIM", help="serial number prefix")
        parser.add_argument("--first", type=int, default=0, help="first serial index")
        parser.add_argument(
            "--username",
            default=None,
            help="one credential for every CPE, bound to their serials (default: a credential "
            "per CPE, OUI-SerialNumber, passwords derived from a secret kept in the data dir)",
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
        acs_url, ca_file = self._acs_url(options)
        cpe_options = CpeOptions(
            acs_url=acs_url,
            ca_file=ca_file,
            auth=options["auth"],
            periodic_interval=options["interval"],
        )
        fleet = CpeFleet(
            options["cwmp"],
            cpe_options,
            prefix=options["prefix"],
            first_index=options["first"],
            cr_port=options["cr_port"],
        )
        if options["cwmp"] and options["auth"] != "none":
            try:
                self._credentials(fleet, options["username"], options["password"])
            except Exception as exc:  # noqa: BLE001 - say what is wrong in one line
                raise CommandError(f"cannot store the simulator's credentials: {exc}") from None
        asyncio.run(self._run(options, fleet))

    @staticmethod
    def _acs_url(options: dict) -> tuple[str, str | None]:
        """The ACS URL (HTTPS when the ACS has an HTTPS port) and the CA to trust."""
        config = AcsConfig.from_settings()
        url = options["acs_url"]
        if url is None and config.tls_port is not None:
            url = f"https://127.0.0.1:{config.tls_port}{config.path}"
        elif url is None:
            url = f"http://127.0.0.1:{config.port}{config.path}"
        ca_file = options["ca_file"]
        if url.startswith("https:") and ca_file is None:
            from oktoscripts import pki

            ca_file = str(pki.tls_files().ca)
        return url, ca_file

    def _credentials(self, fleet: CpeFleet, username: str | None, password: str | None) -> None:
        """Make sure the platform knows the fleet's credentials (a product
        feature: simulated devices must get in on a fresh install)."""
        from oktoscripts.devices.client import default_credentials

        store = default_credentials()
        if username is not None:
            password = password or _secret("sim_cwmp_password")[0]
            fleet.options.username, fleet.options.password = username, password
            store.create_or_update(username, password, devices=fleet.serials)
            return
        secret, new = _secret("sim_cwmp_secret")
        fleet.options.credentials = FleetCredentials(secret.encode())
        pairs = fleet.credentials()
        # Passwords derive from the secret: only missing credentials are made
        # (scrypt costs ~50 ms each), all of them when the secret is new.
        made = set() if new else store.existing(u for u, _ in pairs)
        missing = [(u, p) for u, p in pairs if u not in made]
        if missing:
            self.stdout.write(f"storing {len(missing)} simulated CPEs' credentials...")
            self.stdout.flush()
            store.create_or_update_many(missing)

    async def _run(self, options: dict, fleet: CpeFleet) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        usp_task = None
        if options["cwmp"]:
            await fleet.start(arrivals_per_s=options["rate"])
            self.stdout.write(
                f"simulating {options['cwmp']} CWMP CPEs against {fleet.options.acs_url} "
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
            if options["cwmp"]:
                await fleet.stop()


def _secret(name: str) -> tuple[str, bool]:
    """A secret kept in the data directory, made on first use: (secret, new)."""
    from django.conf import settings

    path = settings.DATA_DIR / name
    if path.exists():
        return path.read_text().strip(), False
    value = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(value)
    return value, True
