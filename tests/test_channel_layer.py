"""The Channels layer on Redis (REDIS_URL, several web processes): a WebSocket
consumer waits for its messages as long as it takes.

Needs a Redis server (REDIS_URL, else 127.0.0.1:6379; CI has one); skipped
with the reason when there is none.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from oktoscripts import config


@pytest.fixture
def redis_url() -> str:
    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url}: {exc}")
    return url


async def test_a_consumer_waits_past_a_quiet_blocking_pop(redis_url):
    """Every consumer of a WebSocket (a run console) sits in the layer's receive.
    It used to fail with "Timeout reading from" Redis after 5 quiet seconds
    (redis-py 8's read timeout against channels-redis's 5 s blocking pops),
    which closed every console that printed nothing for a while."""
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(**config.channel_layers(redis_url)["default"]["CONFIG"])
    try:
        channel = await layer.new_channel()
        receiving = asyncio.ensure_future(layer.receive(channel))
        # Quiet for longer than one blocking pop: the time passing is the test.
        await asyncio.sleep(layer.brpop_timeout + 1.5)
        assert not receiving.done(), receiving.exception()
        await layer.send(channel, {"type": "run.line", "text": "after a quiet while"})
        message = await asyncio.wait_for(receiving, 10)
        assert message == {"type": "run.line", "text": "after a quiet while"}
    finally:
        await layer.close_pools()
