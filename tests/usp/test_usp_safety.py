"""Registration, notifications and bad input: what the controller does with
agents that boot, notify, misbehave or vanish. Each bad input is logged and
dropped, waiting scripts get an error table, and the controller keeps going."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from oktoscripts.usp import messages, mqtt_topics, records, ws_extension

GET_INFO = '{"body": {"request": {"get": {"param_paths": ["Device.DeviceInfo.ModelName"]}}}}'


def _agent_login(env, eid):
    """A raw MQTT client logged in as the agent ``eid`` (the session's credential)."""
    import aiomqtt

    from .conftest import WS_PASSWORD, WS_USER

    address = mqtt_topics.broker_address(env.mqtt_url)
    return aiomqtt.Client(
        address.host, address.port, username=WS_USER, password=WS_PASSWORD, identifier=eid
    )


async def _get_model(env, sn):
    outcome, _ = await env.run(
        "return send_usp_message(args.sn, args.p)", args={"sn": sn, "p": GET_INFO}
    )
    assert outcome.status == "succeeded", outcome.error
    return outcome.result


async def _until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


async def test_boot_registers_the_agent_and_publishes_the_new_device_event(usp311):
    from oktoscripts.devices.events import new_device_events

    events = await new_device_events(usp311.nc)  # subscribed when it returns
    agent_id = usp311.agent_config("boot1", mtp="websocket").endpoint_id

    async def own_event() -> dict:
        # Devices of earlier tests in this session may announce themselves too.
        async for event in events:
            if event["sn"] == agent_id:
                return event
        raise AssertionError("the event stream ended")

    first = asyncio.ensure_future(own_event())
    agent = await usp311.start_agent("boot1", mtp="websocket")
    assert agent.config.endpoint_id == agent_id
    device = await usp311.wait_device(
        agent.config.endpoint_id, lambda d: d["status"] == 2 and d["model"]
    )
    assert device["usp"] is True and device["data_model"] == "TR-181"
    assert (device["vendor"], device["model"], device["version"], device["product_class"]) == (
        "Oktoscripts Sim",
        "USP-GW-1",
        "4.2.0",
        "HGW",
    )
    assert device["mtps"] == ["websocket"]
    assert device["ip"] == "127.0.0.1"
    event = await asyncio.wait_for(first, 10)
    await events.aclose()
    assert event["sn"] == agent.config.endpoint_id
    assert "boot" in agent.notify_responses  # Boot! asked for a NotifyResp and got it


async def test_disconnect_marks_offline_then_503(usp311):
    agent = await usp311.start_agent("gone1", mtp="mqtt")
    sn = agent.config.endpoint_id
    assert (await _get_model(usp311, sn)) == {"Device.DeviceInfo.ModelName": "USP-GW-1"}
    await agent.stop()  # sends a DisconnectRecord, then closes
    await usp311.wait_device(sn, lambda d: d["status"] == 0)
    result = await _get_model(usp311, sn)
    assert result["error_code"] == "503"


async def test_value_change_notification_with_notify_resp(usp311):
    agent = await usp311.start_agent("vc1", mtp="websocket")
    from oktoscripts.usp import bus

    received = []

    async def collect(message):
        received.append(json.loads(message.data))

    sub = await usp311.nc.subscribe(bus.notify_subject(), cb=collect)
    try:
        outcome, _ = await usp311.run(
            r"""
            local sn = args.sn
            local sub = send_usp_message(sn, {body = {request = {add = {create_objs = {{
              obj_path = "Device.LocalAgent.Subscription.", param_settings = {
                {param = "ID", value = "vc-1"}, {param = "Enable", value = "true"},
                {param = "NotifType", value = "ValueChange"},
                {param = "NotifRetry", value = "true"},
                {param = "ReferenceList", value = "Device.WiFi.SSID.1.SSID"}}}}}}}})
            send_usp_message(sn, {body = {request = {set = {update_objs = {{
              obj_path = "Device.WiFi.SSID.1.", param_settings = {
                {param = "SSID", value = "changed"}}}}}}}})
            return sub[1].instantiated_path
        """,
            args={"sn": agent.config.endpoint_id},
        )
        assert outcome.status == "succeeded", outcome.error
        await _until(lambda: "vc-1" in agent.notify_responses)
        await _until(lambda: any(e["type"] == "value_change" for e in received))
    finally:
        await sub.unsubscribe()
    change = next(e for e in received if e["type"] == "value_change")
    assert change["endpoint_id"] == agent.config.endpoint_id
    assert change["notification"] == {
        "param_path": "Device.WiFi.SSID.1.SSID",
        "param_value": "changed",
    }


async def test_invalid_protobuf_on_websocket_closes_1003_and_controller_goes_on(usp311):
    healthy = await usp311.start_agent("ok1", mtp="websocket")
    before = usp311.controller.stats.get("bad_records", 0)
    eid = usp311.agent_config("bad-frames").endpoint_id
    headers = {
        ws_extension.HEADER: ws_extension.extension_header(eid),
        "Authorization": "Basic dXNwLWFnZW50OnVzcC1zZWNyZXQ=",
    }  # usp-agent:usp-secret
    async with ws_connect(
        f"ws://127.0.0.1:{usp311.process.websocket.port}/usp",
        subprotocols=["v1.usp"],
        additional_headers=headers,
        create_connection=ws_extension.UspClientConnection,
    ) as ws:
        await ws.send(b"\xff\xfe this is not a USP Record")
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # the controller's DeviceInfo Get may come first
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 1003
    assert usp311.controller.stats["bad_records"] == before + 1
    assert (await _get_model(usp311, healthy.config.endpoint_id))[
        "Device.DeviceInfo.ModelName"
    ] == "USP-GW-1"


async def test_garbage_and_wrong_to_id_on_mqtt_are_dropped(usp311):
    agent = await usp311.start_agent("ok2", mtp="mqtt")
    stats = usp311.controller.stats
    bad, wrong = stats.get("bad_records", 0), stats.get("wrong_to_id", 0)
    intruder = usp311.agent_config("intruder").endpoint_id
    own_topic = mqtt_topics.agent_publish_topic(usp311.process.config.mqtt_topic, intruder)
    topic = mqtt_topics.publish_topic_v311(own_topic, "nowhere/x")
    misdirected = records.encode_msg_record(
        messages.request(
            "notify",
            "n1",
            subscription_id="x",
            send_resp=True,
            event={"obj_path": "Device.", "event_name": "Boot!"},
        ),
        to_id="os::some-other-controller",
        from_id=intruder,
    )
    async with _agent_login(usp311, intruder) as c:
        await c.publish(topic, b"\x00\x01garbage")
        await c.publish(topic, misdirected)
    await _until(lambda: stats.get("bad_records", 0) > bad and stats.get("wrong_to_id", 0) > wrong)
    assert intruder not in usp311.controller.links
    assert (await _get_model(usp311, agent.config.endpoint_id))[
        "Device.DeviceInfo.ModelName"
    ] == "USP-GW-1"


async def test_wrong_credentials_are_refused(usp311):
    config = usp311.agent_config("intruder", mtp="websocket", password="wrong")
    headers = {
        ws_extension.HEADER: ws_extension.extension_header(config.endpoint_id),
        "Authorization": "Basic dXNwLWFnZW50Ondyb25n",
    }  # usp-agent:wrong
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(config.ws_url, subprotocols=["v1.usp"], additional_headers=headers):
            pass
    assert refused.value.response.status_code == 401
    assert config.endpoint_id not in usp311.controller.links


async def test_agent_disconnecting_mid_request_gives_503_at_once(usp311):
    agent = await usp311.start_agent("flaky1", mtp="websocket")
    await usp311.process.registrar.wait_idle()  # no DeviceInfo read of the registration left
    agent.hooks.disconnect_on_request = True
    started = time.monotonic()
    result = await _get_model(usp311, agent.config.endpoint_id)
    assert result["error_code"] == "503" and "disconnected" in result["error_message"]
    assert time.monotonic() - started < 15  # not the 30 s request timeout
    agent.hooks.disconnect_on_request = False


async def test_silent_agent_gives_408_within_the_run_limit(usp311):
    agent = await usp311.start_agent("mute1", mtp="mqtt")
    await usp311.process.registrar.wait_idle()
    agent.hooks.silent = True
    try:
        started = time.monotonic()
        outcome, _ = await usp311.run(
            "return send_usp_message(args.sn, args.p)",
            args={"sn": agent.config.endpoint_id, "p": GET_INFO},
            wall=2.0,
        )
    finally:
        agent.hooks.silent = False
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["error_code"] == "408"
    assert time.monotonic() - started < 10  # the run ended by itself: no limit hit
    # Nothing left waiting in the controller for it (agents of the session's other
    # controllers may be probed meanwhile: they had the same controller id).
    assert not [key for key in usp311.controller.pending if key[0] == agent.config.endpoint_id]


async def test_notify_flood_is_absorbed(usp311):
    agent = await usp311.start_agent("noisy1", mtp="websocket")
    before = usp311.controller.stats.get("notifications", 0)
    count = 3000
    await asyncio.gather(
        *(
            agent.notify(
                "flood", i % 10 == 0, value_change={"param_path": "Device.X", "param_value": str(i)}
            )
            for i in range(count)
        )
    )
    await _until(lambda: usp311.controller.stats.get("notifications", 0) >= before + count, 30)
    await _until(lambda: agent.notify_responses.count("flood") >= count // 10, 30)
    assert (await _get_model(usp311, agent.config.endpoint_id))[
        "Device.DeviceInfo.ModelName"
    ] == "USP-GW-1"


async def test_controller_dials_an_agent_that_runs_a_websocket_server(usp311):
    from oktoscripts.sim.usp_agent import SimAgent

    agent = SimAgent(usp311.agent_config("server1", mtp="websocket-server"))
    agent_task = asyncio.ensure_future(agent.run())
    await asyncio.wait_for(agent.listening.wait(), 10)
    sn = agent.config.endpoint_id
    dial = asyncio.ensure_future(
        usp311.process.websocket.dial(f"ws://127.0.0.1:{agent.config.ws_listen_port}/usp", sn)
    )
    try:
        await asyncio.wait_for(agent.connected.wait(), 10)
        device = await usp311.wait_device(sn, lambda d: d["status"] == 2 and d["model"])
        assert device["mtps"] == ["websocket"]
        assert (await _get_model(usp311, sn)) == {"Device.DeviceInfo.ModelName": "USP-GW-1"}
    finally:
        dial.cancel()
        await agent.stop()
        agent_task.cancel()


async def test_onboard_request_registers_with_its_fields(usp311):
    agent = await usp311.start_agent("onboard1", mtp="mqtt")
    agent.dm.values["Device.DeviceInfo.SoftwareVersion"] = "5.0.1"
    await agent.notify(
        "",
        True,
        on_board_req={
            "oui": "00D09E",
            "product_class": "HGW",
            "serial_number": agent.config.serial,
            "agent_supported_protocol_versions": "1.3",
        },
    )
    device = await usp311.wait_device(agent.config.endpoint_id, lambda d: d["version"] == "5.0.1")
    assert (device["oui"], device["product_class"]) == ("00D09E", "HGW")
    await _until(lambda: agent.notify_responses.count("") >= 1)


async def test_same_msg_id_twice_in_flight_is_refused_with_409(usp311):
    agent = await usp311.start_agent("dup1", mtp="websocket")
    agent.hooks.delays["Device.DeviceInfo.ModelName"] = 0.5
    payload = (
        '{"header": {"msg_id": "same-id"}, "body": {"request": {"get": '
        '{"param_paths": ["Device.DeviceInfo.ModelName"]}}}}'
    )
    try:
        first, second = await asyncio.gather(
            usp311.run(
                "return send_usp_message(args.sn, args.p)",
                args={"sn": agent.config.endpoint_id, "p": payload},
            ),
            usp311.run(
                "sleep(0.1) return send_usp_message(args.sn, args.p)",
                args={"sn": agent.config.endpoint_id, "p": payload},
            ),
        )
    finally:
        agent.hooks.delays.clear()
    assert first[0].result == {"Device.DeviceInfo.ModelName": "USP-GW-1"}
    assert second[0].result["error_code"] == "409"


async def test_a_second_websocket_session_of_an_agent_replaces_the_first(usp311):
    url = f"ws://127.0.0.1:{usp311.process.websocket.port}/usp"
    eid = usp311.agent_config("twice-connected").endpoint_id
    headers = {
        ws_extension.HEADER: ws_extension.extension_header(eid),
        "Authorization": "Basic dXNwLWFnZW50OnVzcC1zZWNyZXQ=",
    }

    def connect():
        return ws_connect(
            url,
            subprotocols=["v1.usp"],
            additional_headers=headers,
            create_connection=ws_extension.UspClientConnection,
        )

    async with connect() as first:
        await _until(lambda: eid in usp311.controller.links)
        async with connect() as second:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(first.recv(), 10)
            assert closed.value.rcvd.code == 1000
            assert second.peer_endpoint_id == usp311.controller.endpoint_id
            assert usp311.controller.links[eid].mtp == "websocket"
    await _until(lambda: eid not in usp311.controller.links)


async def test_fleet_from_settings_registers_mixed_agents(usp311, settings, usp_names):
    from oktoscripts.sim.usp_fleet import run_usp_fleet

    settings.USP_ENDPOINT_ID = usp311.controller.endpoint_id
    settings.MQTT_URL = usp311.mqtt_url
    settings.USP_MQTT_TOPIC = usp311.process.config.mqtt_topic
    settings.USP_MQTT_AGENT_TOPIC = usp311.process.config.mqtt_agent_topic
    settings.USP_WS_HOST, settings.USP_WS_PORT = "127.0.0.1", usp311.process.websocket.port
    settings.USP_WS_TLS = False
    prefix = f"fleet{usp_names['SESSION']}"
    fleet = asyncio.ensure_future(run_usp_fleet(4, mtp="mixed", prefix=prefix))
    try:
        for index in range(1, 5):
            device = await usp311.wait_device(
                f"os::00D09E-{prefix}-{index:05d}", lambda d: d["status"] == 2 and d["model"]
            )
            assert device["mtps"] == (["mqtt"] if index % 2 else ["websocket"])
    finally:
        fleet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fleet


@pytest.mark.parametrize("mtp", ["mqtt", "websocket"])
async def test_a_lost_connection_marks_the_agent_offline(usp311, mtp):
    agent = await usp311.start_agent(f"cut-{mtp}", mtp=mtp, retry_s=30.0)
    await usp311.process.registrar.wait_idle()
    agent.drop_connection()  # MQTT: the broker publishes the Will (a DisconnectRecord)
    await usp311.wait_device(agent.config.endpoint_id, lambda d: d["status"] == 0)
    assert agent.config.endpoint_id not in usp311.controller.links


async def test_a_stray_record_from_a_silent_endpoint_registers_nothing(usp311, monkeypatch):
    from oktoscripts.usp import registration

    monkeypatch.setattr(registration, "DEVICE_INFO_TIMEOUT_S", 1.0)
    stray = usp311.agent_config("stray-sender").endpoint_id
    record = records.encode_msg_record(
        messages.request(
            "notify",
            "s1",
            subscription_id="x",
            value_change={"param_path": "Device.X", "param_value": "1"},
        ),
        to_id=usp311.controller.endpoint_id,
        from_id=stray,
    )
    own_topic = mqtt_topics.agent_publish_topic(usp311.process.config.mqtt_topic, stray)
    topic = mqtt_topics.publish_topic_v311(own_topic, "nobody/listens")
    async with _agent_login(usp311, stray) as c:
        await c.publish(topic, record)
    await _until(lambda: stray in usp311.controller.links)
    await _until(lambda: stray not in usp311.controller.links)
    await usp311.process.registrar.wait_idle()
    assert await asyncio.to_thread(usp311.registry.get, stray) is None


async def test_an_agent_booted_before_the_controller_registers_once_it_is_up(nats_url, mongo_db):
    """MQTT QoS 0 drops a Boot! sent before the controller subscribed; the agent
    sends it again until the NotifyResp comes, so it still registers. (Through
    Mosquitto: the embedded broker lets no agent in before a controller runs.)"""
    from oktoscripts.sim.usp_agent import AgentConfig, SimAgent

    from .conftest import (
        CONTROLLER_ID,
        MOSQUITTO,
        SESSION,
        _mqtt5_reachable,
        agent_base,
        controller_topic,
        start_env,
        stop_env,
    )

    if await _mqtt5_reachable():
        pytest.skip("no Mosquitto on 127.0.0.1:1883")
    mqtt_url = f"mqtt://{MOSQUITTO[0]}:{MOSQUITTO[1]}"
    eid = f"os::t{SESSION}-late-boot"
    agent = SimAgent(
        AgentConfig(
            endpoint_id=eid,
            controller_id=CONTROLLER_ID,
            mtp="mqtt",
            mqtt_url=mqtt_url,
            mqtt_version="3.1.1",
            controller_topic=controller_topic("late"),
            agent_topic=f"{agent_base('late')}/{eid}",
            retry_s=0.2,
            notify_retry_s=0.3,
        )
    )
    task = asyncio.get_running_loop().create_task(agent.run())
    env = None
    try:
        await asyncio.wait_for(agent.connected.wait(), 15)  # Boot! sent to nobody
        env = await start_env("late", nats_url=nats_url, mongo_db=mongo_db, mqtt_url=mqtt_url)
        device = await env.wait_device(agent.config.endpoint_id, lambda d: d["status"] == 2)
        assert device["usp"] is True
        await _until(lambda: "boot" in agent.notify_responses, 10)
    finally:
        await agent.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if env is not None:
            await stop_env(env)


async def test_a_refused_dial_is_logged_and_tried_again(usp311, caplog):
    """An agent's WebSocket server answering the handshake with an HTTP status
    (here 403, twice) does not end the dial: it is logged and retried."""
    import logging

    from oktoscripts.sim.usp_agent import SimAgent

    caplog.set_level(logging.WARNING, logger="oktoscripts.usp.websocket_mtp")
    agent = SimAgent(usp311.agent_config("refusing1", mtp="websocket-server"))
    agent.hooks.refuse_handshakes = 2
    agent_task = asyncio.ensure_future(agent.run())
    await asyncio.wait_for(agent.listening.wait(), 10)
    sn = agent.config.endpoint_id
    dial = asyncio.ensure_future(
        usp311.process.websocket.dial(
            f"ws://127.0.0.1:{agent.config.ws_listen_port}/usp", sn, retry_s=0.1
        )
    )
    try:
        await asyncio.wait_for(agent.connected.wait(), 10)
        await usp311.wait_device(sn, lambda d: d["status"] == 2 and d["model"])
        refusals = [r.getMessage() for r in caplog.records if "HTTP 403" in r.getMessage()]
        assert len(refusals) == 2 and sn in refusals[0]
    finally:
        dial.cancel()
        await agent.stop()
        agent_task.cancel()
