"""Connecting to NATS with the platform's settings."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client

log = logging.getLogger(__name__)

# A server that stops answering without closing the connection (its machine
# powered off, a cut cable) is given up after this many unanswered pings this
# far apart (10-15 s), sooner than a worker is declared lost (15 s); nats-py's
# own defaults (2 pings 2 minutes apart) left a process hanging for minutes.
PING_INTERVAL_S = 5
MAX_OUTSTANDING_PINGS = 2


def nats_url() -> str:
    """The configured NATS URL; a one-line error when there is none."""
    from django.conf import settings

    from oktoscripts.config import ConfigError

    if not settings.NATS_URL:
        raise ConfigError(
            "NATS_URL",
            "not set and no embedded NATS is running (start `python manage.py up` or set NATS_URL)",
        )
    return settings.NATS_URL


async def connect(
    name: str, url: str | None = None, *, first_attempts: int | None = None, **options: object
) -> Client:
    """A NATS client that keeps reconnecting for ever: a restart of the server
    must not end a long-running platform process.

    ``first_attempts``: give up the *first* connection after that many tries
    per server (raising NoServersError) for callers that a user waits on;
    once connected, the client still reconnects for ever."""

    clients: list[Client] = []

    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    async def on_disconnect() -> None:
        # Closing the client on purpose also calls this: not worth a warning.
        if clients and clients[0].is_closed:
            log.debug("nats: closed")
        else:
            log.warning("nats: disconnected")

    async def on_reconnect() -> None:
        log.info("nats: reconnected")

    defaults: dict = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 5,
        "ping_interval": PING_INTERVAL_S,
        "max_outstanding_pings": MAX_OUTSTANDING_PINGS,
        "allow_reconnect": True,
        "error_cb": on_error,
        "disconnected_cb": on_disconnect,
        "reconnected_cb": on_reconnect,
    }
    defaults.update(options)
    # NATS_URL may name a cluster: "nats://a:4222,nats://b:4222".
    servers = [server.strip() for server in (url or nats_url()).split(",") if server.strip()]
    if first_attempts is None:
        client = await nats.connect(servers, **defaults)
    else:
        reconnects = defaults["max_reconnect_attempts"]
        client = await nats.connect(
            servers, **{**defaults, "max_reconnect_attempts": first_attempts}
        )
        client.options["max_reconnect_attempts"] = reconnects
    clients.append(client)
    return client
