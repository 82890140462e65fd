"""``python manage.py usp``: the USP controller (MQTT and WebSocket MTPs) until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from oktoscripts.config import ConfigError, redact

log = logging.getLogger("oktoscripts.usp")


class Command(BaseCommand):
    help = (
        "Run the TR-369 USP controller: the MQTT MTP on MQTT_URL (topic "
        "OKTOSCRIPTS_USP_MQTT_TOPIC), the WebSocket MTP on OKTOSCRIPTS_USP_WS_PORT, "
        "and the NATS service workers call. SIGTERM/Ctrl-C stops it."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--ws-port",
            type=int,
            default=None,
            help="WebSocket MTP port (default OKTOSCRIPTS_USP_WS_PORT); "
            "-1 turns the WebSocket MTP off",
        )
        parser.add_argument("--no-mqtt", action="store_true", help="no MQTT MTP")

    def handle(self, *args: object, **options: object) -> None:
        from oktoscripts.usp.app import ControllerConfig

        try:
            config = ControllerConfig.from_settings()
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if options["ws_port"] is not None:
            config.ws_port = None if options["ws_port"] < 0 else options["ws_port"]
        if options["no_mqtt"]:
            config.mqtt_url = ""
        if not config.mqtt_url and config.ws_port is None:
            raise CommandError("no MTP: set MQTT_URL or leave the WebSocket MTP on")
        try:
            asyncio.run(self._serve(config))
        except ConfigError as exc:
            raise CommandError(str(exc)) from None

    async def _serve(self, config: object) -> None:
        from oktoscripts.bus.connection import connect
        from oktoscripts.devices.client import default_credentials, mongo_database
        from oktoscripts.devices.events import LoopAnnouncer
        from oktoscripts.devices.registry import DeviceRegistry
        from oktoscripts.metrics.collectors import devices_online
        from oktoscripts.metrics.process import ProcessMetrics
        from oktoscripts.usp.app import ControllerProcess

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        nc = await connect("usp-controller")
        registry = DeviceRegistry(mongo_database(), announcer=LoopAnnouncer(nc))
        await asyncio.to_thread(registry.ensure_indexes)
        credentials = await asyncio.to_thread(default_credentials)
        process = ControllerProcess(config, nc=nc, registry=registry, credentials=credentials)
        try:
            await process.start()
        except OSError as exc:
            await nc.close()
            raise CommandError(f"cannot start the USP controller: {exc}") from None
        metrics = ProcessMetrics("usp", config.endpoint_id)
        await metrics.start(nc, (devices_online(registry, "usp"),))
        log.info(
            "usp controller %s running (MQTT %s, WebSocket %s)",
            config.endpoint_id,
            redact(config.mqtt_url) or "off",
            f"port {config.ws_port}" if config.ws_port else "off",
        )
        await stop.wait()
        await metrics.stop()
        await process.stop()
        await nc.drain()
