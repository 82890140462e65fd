"""The event stream lag of each trigger and deployed listener, read from JetStream."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from nats.js import api
from prometheus_client import generate_latest

from oktoscripts.automations.lag import consumer_lags, event_stream_lag
from oktoscripts.automations.models import Deployment, Trigger
from oktoscripts.automations.triggers import source_of
from oktoscripts.cwmp import events as cwmp_events
from oktoscripts.cwmp.soap import EventStruct
from tests.automations.conftest import make_script  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


async def publish(js, serial: str, code: str, count: int) -> None:
    for _ in range(count):
        await cwmp_events.publish(js, serial, [EventStruct(code)])


async def test_the_lag_is_the_events_each_automation_has_not_been_given(nc, make_script):  # noqa: F811
    js = nc.jetstream()
    await cwmp_events.ensure_stream(js)
    script = await sync_to_async(make_script)("listen.lua", "return 1")
    trigger = await Trigger.objects.acreate(
        name="on boot", script=script, kind="cwmp_event", event="1"
    )
    deployment = await Deployment.objects.acreate(name="watcher", script=script)
    # The trigger's consumer, as the scheduler opens it; nobody pulls from it here.
    source = source_of(trigger)
    await js.add_consumer(
        source.stream,
        api.ConsumerConfig(
            durable_name=source.consumer,
            filter_subject=source.filter_subject,
            deliver_policy=api.DeliverPolicy.NEW,
            ack_policy=api.AckPolicy.EXPLICIT,
        ),
    )
    # The deployed listener's consumer, as its run's listen_to_cwmp_event opens it.
    await cwmp_events.subscribe(js, "4", None, durable=f"{deployment.listener_key}-1")
    await publish(js, "LAG-1", "1 BOOT", 3)
    await publish(js, "LAG-1", "4 VALUE CHANGE", 2)

    lags = await consumer_lags(js)
    assert ("trigger", trigger.pk, "on boot", 3) in lags
    assert ("deployment", deployment.pk, "watcher", 2) in lags

    collector = event_stream_lag(nc)
    await collector.refresh()
    text = generate_latest().decode()
    assert (
        f'oktoscripts_event_stream_lag{{automation="trigger",id="{trigger.pk}",name="on boot"}} 3.0'
    ) in text
    assert (
        f'oktoscripts_event_stream_lag{{automation="deployment",id="{deployment.pk}",'
        f'name="watcher"}} 2.0'
    ) in text
