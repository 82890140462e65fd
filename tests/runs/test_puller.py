"""The puller takes exactly as many requests as there is room, without waiting for expiries."""

from __future__ import annotations

import asyncio
import time

from nats.js import api

from oktoscripts.bus import subjects
from oktoscripts.runs.puller import PULL_EXPIRES_S, RequestPuller


async def test_requests_flow_as_room_frees_and_never_beyond_it(nc):
    js = nc.jetstream()
    stream = subjects.stream_name("pullertest")
    subject = subjects.subject("pullertest")
    await js.add_stream(name=stream, subjects=[subject], retention=api.RetentionPolicy.WORK_QUEUE)
    await js.add_consumer(
        stream,
        api.ConsumerConfig(durable_name="c", ack_policy=api.AckPolicy.EXPLICIT, max_waiting=4096),
    )
    room_size = 30
    held: list = []
    most_held = 0

    def on_request(msg) -> None:
        nonlocal most_held
        held.append(msg)
        most_held = max(most_held, len(held))

    puller = RequestPuller(nc, stream, "c", on_request, lambda: room_size - len(held))
    await puller.start()
    try:
        started = time.monotonic()
        for wave in range(3):  # waves: pull requests of earlier rounds are partly used
            await asyncio.gather(*[js.publish(subject, b"x") for _ in range(100)])
            taken = 0
            while taken < 100:
                await asyncio.sleep(0.02)
                assert time.monotonic() - started < PULL_EXPIRES_S * (wave + 1) * 0.8
                for msg in held[: len(held) // 2 + 1]:  # finish some, as runs do
                    await msg.ack()
                    held.remove(msg)
                    taken += 1
                puller.top_up()
    finally:
        await puller.stop()
        await js.delete_stream(stream)
    assert most_held <= room_size


async def test_a_consumer_without_leader_is_asked_again_after_a_pause(nats_url):
    """While JetStream elects the run queue consumer's leader (a NATS node was
    lost), every pull request is refused at once with 503. The puller used to
    ask again at once: thousands of requests a second for as long as the
    election lasted. It now asks every UNAVAILABLE_PAUSE_S."""
    from oktoscripts.bus.connection import connect
    from oktoscripts.runs.puller import UNAVAILABLE_PAUSE_S

    client = await connect("puller-503", nats_url)
    # No such consumer: nothing answers its pull requests, as during an election.
    puller = RequestPuller(client, "NO_SUCH_STREAM", "c", lambda msg: None, lambda: 10)
    await puller.start()
    try:
        before = client.stats["out_msgs"]
        await asyncio.sleep(1.5)  # the time passing is what is measured
        asked = client.stats["out_msgs"] - before
    finally:
        await puller.stop()
        await client.close()
    assert asked <= 1.5 / UNAVAILABLE_PAUSE_S + 2
