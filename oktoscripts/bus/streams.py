"""Creating the JetStream streams and key-value buckets the platform uses.

Every ``ensure_*`` function is idempotent: each process calls it on start, so
whichever process comes first creates the stream and the others find it.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from oktoscripts.bus import subjects

log = logging.getLogger(__name__)

# A queued run request waits at most this long for a worker.
RUN_REQUEST_MAX_AGE_S = 7 * 24 * 3600
# A worker that took a request but died before claiming the run gets the
# request redelivered (to any worker) after this long.
RUN_REQUEST_ACK_WAIT_S = 30.0


async def ensure_run_queue(js: JetStreamContext) -> str:
    """The work-queue stream of run requests and its shared pull consumer.

    Work-queue retention: a request is removed once one worker acknowledged
    it, so each run request is taken by exactly one worker."""
    name = subjects.stream_name(subjects.RUN_QUEUE_STREAM)
    config = api.StreamConfig(
        name=name,
        subjects=[subjects.run_queue()],
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        max_age=RUN_REQUEST_MAX_AGE_S,
        duplicate_window=120.0,  # Nats-Msg-Id = run id: a retried submit queues once
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.stream_info(name)  # created by another process at the same moment
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
    bucket = subjects.kv_bucket(subjects.WORKERS_BUCKET)
    try:
        return await js.key_value(bucket)
    except (NotFoundError, BadRequestError):
        pass
    try:
        return await js.create_key_value(
            api.KeyValueConfig(bucket=bucket, history=1, ttl=ttl_s, storage=api.StorageType.FILE)
        )
    except BadRequestError:
        return await js.key_value(bucket)


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
