"""Creating the JetStream streams and key-value buckets the platform uses.

Every ``ensure_*`` function is idempotent: each process calls it on start, so
whichever process comes first creates the stream and the others find it.

Every stream and bucket is stored ``OKTOSCRIPTS_STREAM_REPLICAS`` times (1 by
default; 3 on a 3-node NATS cluster, so that losing a node loses nothing and
stops nothing). A stream found with another replica count is changed to it:
raising the setting on a running installation takes effect as its processes
restart. Durable consumers follow their stream's replica count.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from nats.js import JetStreamContext, api
from nats.js.errors import APIError, BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from oktoscripts.bus import subjects
from oktoscripts.bus.retry import retrying
from oktoscripts.config import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

# A queued run request waits at most this long for a worker.
RUN_REQUEST_MAX_AGE_S = 7 * 24 * 3600
# A worker that took a request but died before claiming the run gets the
# request redelivered (to any worker) after this long.
RUN_REQUEST_ACK_WAIT_S = 30.0
# JetStream's answers to more replicas than it has servers for: "replicas > 1
# not supported in non-clustered mode", "insufficient resources".
REPLICA_ERRORS = (10074, 10023)


def replicas() -> int:
    """How many servers store each stream (OKTOSCRIPTS_STREAM_REPLICAS)."""
    from django.conf import settings

    return settings.STREAM_REPLICAS


async def ensure_stream(js: JetStreamContext, config: api.StreamConfig) -> api.StreamInfo:
    """Create the stream, or find it (made by another process, perhaps at the
    same moment) and give it the configured replica count. Waits out a
    JetStream leader election (retry.py)."""
    return await retrying(lambda: _ensure_stream(js, config))


async def _ensure_stream(js: JetStreamContext, config: api.StreamConfig) -> api.StreamInfo:
    config.num_replicas = replicas()
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        try:
            return await _replicated(js.add_stream(config), config.name)
        except BadRequestError:
            info = await js.stream_info(config.name)  # created by another process meanwhile
    return await _with_replicas(js, info)


async def _with_replicas(js: JetStreamContext, info: api.StreamInfo) -> api.StreamInfo:
    wanted = replicas()
    if (info.config.num_replicas or 1) == wanted:
        return info
    log.info(
        "stream %s: %s replicas -> %s", info.config.name, info.config.num_replicas or 1, wanted
    )
    info.config.num_replicas = wanted
    return await _replicated(js.update_stream(info.config), info.config.name)


async def _replicated(change: Awaitable[T], name: str) -> T:
    """``change`` (a stream or bucket created or updated); a replica count the
    NATS servers cannot hold is the user's setting to fix."""
    try:
        return await change
    except APIError as exc:
        if exc.err_code not in REPLICA_ERRORS:
            raise
        raise ConfigError(
            "OKTOSCRIPTS_STREAM_REPLICAS",
            f"NATS cannot keep stream {name} on {replicas()} servers: {exc.description}",
        ) from None


async def ensure_run_queue(js: JetStreamContext) -> str:
    """The work-queue stream of run requests and its shared pull consumer.

    Work-queue retention: a request is removed once one worker acknowledged
    it, so each run request is taken by exactly one worker."""
    return await retrying(lambda: _ensure_run_queue(js))


async def _ensure_run_queue(js: JetStreamContext) -> str:
    name = subjects.stream_name(subjects.RUN_QUEUE_STREAM)
    config = api.StreamConfig(
        name=name,
        subjects=[subjects.run_queue()],
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        max_age=RUN_REQUEST_MAX_AGE_S,
        duplicate_window=120.0,  # Nats-Msg-Id = run id: a retried submit queues once
    )
    await _ensure_stream(js, config)
    consumer = api.ConsumerConfig(
        durable_name=subjects.RUN_QUEUE_CONSUMER,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=RUN_REQUEST_ACK_WAIT_S,
        max_ack_pending=100_000,
        max_waiting=4096,
        deliver_policy=api.DeliverPolicy.ALL,
    )
    try:
        await js.consumer_info(name, subjects.RUN_QUEUE_CONSUMER)
    except NotFoundError:
        await js.add_consumer(name, consumer)
    return name


async def ensure_workers_bucket(js: JetStreamContext, ttl_s: float) -> KeyValue:
    """The key-value bucket of worker heartbeats. Keys of workers that stopped
    beating expire after ``ttl_s``."""
    return await retrying(lambda: _ensure_workers_bucket(js, ttl_s))


async def _ensure_workers_bucket(js: JetStreamContext, ttl_s: float) -> KeyValue:
    bucket = subjects.kv_bucket(subjects.WORKERS_BUCKET)
    try:
        kv = await js.key_value(bucket)
    except (NotFoundError, BadRequestError):
        config = api.KeyValueConfig(
            bucket=bucket, history=1, ttl=ttl_s, storage=api.StorageType.FILE, replicas=replicas()
        )
        try:
            return await _replicated(js.create_key_value(config), f"KV_{bucket}")
        except BadRequestError:
            kv = await js.key_value(bucket)  # created by another process meanwhile
    await _with_replicas(js, await js.stream_info(f"KV_{bucket}"))
    return kv


async def delete_prefixed(js: JetStreamContext, prefix: str) -> list[str]:
    """Delete every stream and key-value bucket named with this bus prefix
    (test sessions sharing one NATS server clean up after themselves)."""
    head = f"{prefix}_".upper()
    deleted = []
    for info in await js.streams_info():
        name = info.config.name
        if name.startswith((head, f"KV_{head}", f"OBJ_{head}")):
            try:
                await js.delete_stream(name)
                deleted.append(name)
            except NotFoundError:
                pass
    return deleted
