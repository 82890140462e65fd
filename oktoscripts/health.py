"""``/healthz``: the state and latency of each dependency, 200 only when all are up.

The checks run at once and each is bounded by CHECK_TIMEOUT, so a service that
is down costs about that long and no more. A check that blocks (a database
that does not answer) runs on its own thread, never on the thread that serves
Django's synchronous views.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from nats.aio.client import Client as NATS

CHECK_TIMEOUT = 2.0  # what each client is told; the check as a whole gets a little more:
CHECK_DEADLINE = CHECK_TIMEOUT + 0.5  # so the client's own, more telling error wins
_mongo_clients: dict[str, object] = {}  # one pooled client per URI for the life of the process


async def _quiet(exc: Exception) -> None:
    """nats-py prints every connection error by default; the check reports it instead."""


async def check_nats() -> None:
    """Connect, make one round trip, close: a fresh connection each time, so a
    restarted server is seen as soon as it is back and nothing is left open."""
    if not settings.NATS_URL:
        raise RuntimeError("NATS_URL not configured")
    client = NATS()
    try:
        await client.connect(
            [url.strip() for url in settings.NATS_URL.split(",")],
            connect_timeout=CHECK_TIMEOUT,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=_quiet,
            name="oktoscripts-healthz",
        )
        await client.flush(timeout=CHECK_TIMEOUT)
    finally:
        with contextlib.suppress(Exception):
            await client.close()


def _mongo_ping() -> None:
    from oktoscripts.devices.client import new_client

    if not settings.MONGO_URI:
        raise RuntimeError("MONGO_URI not configured")
    client = _mongo_clients.get(settings.MONGO_URI)
    if client is None:
        client = new_client(settings.MONGO_URI, timeout_s=CHECK_TIMEOUT, probe=True)
        _mongo_clients[settings.MONGO_URI] = client
    client.admin.command("ping")


def _mongo_last_error() -> str | None:
    """What the MongoDB client last failed with, if anything: said when the
    check itself ran out of time (its thread starved of CPU, say) before the
    client's own timeout could report it."""
    client = _mongo_clients.get(settings.MONGO_URI)
    if client is None:
        return None
    for server in client.topology_description.server_descriptions().values():
        if server.error is not None:
            return _one_line(server.error)
    return None


def _database_ping() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # This runs on a pool thread: its connection must not outlive the check.
        connection.close()


async def _timed(
    check: Callable[[], Awaitable[None]], last_error: Callable[[], str | None] | None = None
) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_DEADLINE)
    except TimeoutError:
        error = f"no answer within {CHECK_DEADLINE:g} s"
        known = last_error() if last_error else None
        return {"status": "down", "error": f"{error}: {known}" if known else error}
    except Exception as exc:  # any failure is a state to report, not a crash
        return {"status": "down", "error": _one_line(exc)}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _one_line(exc: Exception) -> str:
    text = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
    return (text.strip().splitlines() or [type(exc).__name__])[0]


CHECKS: dict[str, Callable[[], Awaitable[None]]] = {
    "nats": check_nats,
    "mongodb": sync_to_async(_mongo_ping, thread_sensitive=False),
    "database": sync_to_async(_database_ping, thread_sensitive=False),
}


# What a check that ran out of time can still say about why.
LAST_ERRORS: dict[str, Callable[[], str | None]] = {"mongodb": _mongo_last_error}


async def healthz(request: HttpRequest) -> JsonResponse:
    results = await asyncio.gather(
        *(_timed(check, LAST_ERRORS.get(name)) for name, check in CHECKS.items())
    )
    report = dict(zip(CHECKS, results, strict=True))
    healthy = all(r["status"] == "up" for r in results)
    return JsonResponse(
        {"status": "up" if healthy else "down", "checks": report}, status=200 if healthy else 503
    )
