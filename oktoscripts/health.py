"""``/healthz``: the state and latency of each dependency, 200 only when all are up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import nats
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

CHECK_TIMEOUT = 2.0
_mongo_clients: dict[str, object] = {}


async def check_nats() -> None:
    if not settings.NATS_URL:
        raise RuntimeError("NATS_URL not configured")
    client = await nats.connect(
        settings.NATS_URL, connect_timeout=CHECK_TIMEOUT, max_reconnect_attempts=0,
        allow_reconnect=False,
    )
    try:
        await client.flush(timeout=CHECK_TIMEOUT)
    finally:
        await client.close()


def _mongo_ping() -> None:
    import pymongo

    if not settings.MONGO_URI:
        raise RuntimeError("MONGO_URI not configured")
    client = _mongo_clients.get(settings.MONGO_URI)
    if client is None:
        client = pymongo.MongoClient(
            settings.MONGO_URI,
            serverSelectionTimeoutMS=int(CHECK_TIMEOUT * 1000),
            connectTimeoutMS=int(CHECK_TIMEOUT * 1000),
        )
        _mongo_clients[settings.MONGO_URI] = client
    client.admin.command("ping")


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _timed(check: Callable[[], Awaitable[None]]) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT + 0.5)
    except Exception as exc:  # any failure is a state to report, not a crash
        return {"status": "down", "error": str(exc) or type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def healthz(request: HttpRequest) -> JsonResponse:
    names = ("nats", "mongodb", "database")
    checks = (
        check_nats,
        sync_to_async(_mongo_ping, thread_sensitive=False),
        sync_to_async(_database_ping),
    )
    results = await asyncio.gather(*(_timed(check) for check in checks))
    report = dict(zip(names, results, strict=True))
    healthy = all(r["status"] == "up" for r in results)
    return JsonResponse(
        {"status": "up" if healthy else "down", "checks": report}, status=200 if healthy else 503
    )
