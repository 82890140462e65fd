"""Whether MQTT agents are online follows reality: a controller restart, an
agent that stops without a word (no DisconnectRecord, no MQTT Will, as the
BBF reference agent does), one that comes back."""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import start_env, stop_env

LEASE_S = 2.0
GET_MODEL = '{"body": {"request": {"get": {"param_paths": ["Device.DeviceInfo.ModelName"]}}}}'


@pytest.fixture
async def live(nats_url, mongo_db, mqtt311, mqtt311_url):
    env = await start_env(
        "live",
        nats_url=nats_url,
        mongo_db=mongo_db,
        mqtt_url=mqtt311_url,
        broker=mqtt311,
        mqtt_lease_s=LEASE_S,
    )
    try:
        yield env
    finally:
        await stop_env(env)


async def _restart(env) -> None:
    """Stop the controller and start a new one with the same settings; the agents'
    MQTT sessions with the broker stay up meanwhile."""
    from oktoscripts.usp.app import ControllerProcess

    old = env.process
    await old.stop()
    env.process = ControllerProcess(
        old.config, nc=env.nc, registry=env.registry, credentials=old._credentials
    )  # noqa: SLF001
    await env.process.start()
    await env.process.wait_mqtt()


async def _get_model(env, sn, wall=30.0):
    outcome, _ = await env.run(
        "return send_usp_message(args.sn, args.p)", args={"sn": sn, "p": GET_MODEL}, wall=wall
    )
    assert outcome.status == "succeeded", outcome.error
    return outcome.result


async def test_a_restarted_controller_shows_answering_agents_online_within_10_s(live):
    agents = [await live.start_agent(f"restart{i}", mtp="mqtt") for i in range(3)]
    await live.process.registrar.wait_idle()
    started = time.monotonic()
    await _restart(live)
    for agent in agents:
        await live.wait_device(
            agent.config.endpoint_id,
            lambda d: d["status"] == 2,
            timeout=10 - (time.monotonic() - started),
        )


async def test_an_agent_marked_offline_at_restart_is_online_once_it_answers(live, monkeypatch):
    """It was silent while the new controller probed; the first answer it gives
    to a script's Get brings it online (the route the registry remembers no
    longer short-circuits the "agent seen" path)."""
    from oktoscripts.usp import liveness

    monkeypatch.setattr(liveness, "RECOVER_TIMEOUT_S", 0.5)
    agent = await live.start_agent("late-answer", mtp="mqtt")
    await live.process.registrar.wait_idle()
    sn = agent.config.endpoint_id
    agent.hooks.silent = True
    await _restart(live)
    await live.wait_device(sn, lambda d: d["status"] == 0)
    await asyncio.sleep(1.0)  # the recovery probe is over, unanswered
    agent.hooks.silent = False
    assert await _get_model(live, sn) == {"Device.DeviceInfo.ModelName": "USP-GW-1"}
    await live.wait_device(sn, lambda d: d["status"] == 2, timeout=5)


async def test_an_agent_that_stops_silently_is_offline_within_two_leases(live):
    agent = await live.start_agent("stops", mtp="mqtt")
    await live.process.registrar.wait_idle()
    sn = agent.config.endpoint_id
    assert await _get_model(live, sn) == {"Device.DeviceInfo.ModelName": "USP-GW-1"}
    agent.hooks.silent = True  # stopped: the broker keeps its session, no Will comes
    stopped = time.monotonic()
    await live.wait_device(sn, lambda d: d["status"] == 0, timeout=2 * LEASE_S + 1)
    assert time.monotonic() - stopped <= 2 * LEASE_S + 0.5  # the sweep's own slack
    later = await _get_model(live, sn, wall=3.0)
    assert later["error_code"] == "408"
    device = await asyncio.to_thread(live.registry.get_lua, sn)
    assert device["status"] == 0
    # It comes back without reconnecting: its next answer brings it online.
    agent.hooks.silent = False
    assert await _get_model(live, sn) == {"Device.DeviceInfo.ModelName": "USP-GW-1"}
    await live.wait_device(sn, lambda d: d["status"] == 2, timeout=5)
