"""``python manage.py usp`` as its own process, on its defaults: agents
register through it (MQTT: logins to the embedded broker answered by it;
WebSocket over TLS with a client certificate and no password, as obuspa
connects), scripts reach them through it, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from oktoscripts.launcher.embedded.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


async def test_controller_command_serves_agents_and_scripts(
    nats_url, mongo_uri, mongo_db, mqtt311, mqtt311_url, data_dir, usp_names
):
    from oktoscripts.bindings.services import Services
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.devices.registry import DeviceRegistry
    from oktoscripts.lua.limits import Limits
    from oktoscripts.lua.run import LuaRun
    from oktoscripts.pki import Authority
    from oktoscripts.sim.usp_agent import AgentConfig, SimAgent

    SESSION, CONTROLLER_ID = usp_names["SESSION"], usp_names["CONTROLLER_ID"]
    WS_USER, WS_PASSWORD = usp_names["WS_USER"], usp_names["WS_PASSWORD"]
    store = CredentialStore(mongo_db)
    await asyncio.to_thread(store.create_or_update, WS_USER, WS_PASSWORD)
    await asyncio.to_thread(store.bind, WS_USER, [f"os::t{SESSION}-*"])
    ws_port = free_port()
    topic = f"okto-test-{SESSION}/cmd/controller"
    agent_base = f"okto-test-{SESSION}/cmd/agent"
    env = dict(
        os.environ,
        NATS_URL=nats_url,
        MONGO_URI=mongo_uri,
        MQTT_URL=mqtt311.mqtt_url,
        OKTOSCRIPTS_EMBEDDED_MQTT_AUTH=str(mqtt311.auth_file),
        OKTOSCRIPTS_DATA_DIR=str(data_dir),
        OKTOSCRIPTS_USP_ENDPOINT_ID=CONTROLLER_ID,
        OKTOSCRIPTS_USP_MQTT_TOPIC=topic,
        OKTOSCRIPTS_USP_MQTT_AGENT_TOPIC=agent_base,
        OKTOSCRIPTS_USP_WS_PORT=str(ws_port),
    )
    # The certificate of the WebSocket agent, from the CA the controller will use.
    ws_eid = f"os::t{SESSION}-cmd-websocket"
    authority = Authority.ensure(data_dir / "pki")
    cert, key = authority.issue_usp_agent(ws_eid)
    (data_dir / "agent.pem").write_bytes(cert)
    (data_dir / "agent.key").write_bytes(key)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "usp"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    agents, tasks = [], []
    try:
        assert await asyncio.to_thread(wait_for_port, "127.0.0.1", ws_port, 30)
        for mtp in ("mqtt", "websocket"):
            eid = f"os::t{SESSION}-cmd-{mtp}"
            login = (
                {"username": WS_USER, "password": WS_PASSWORD}
                if mtp == "mqtt"
                else {
                    "tls_cert": str(data_dir / "agent.pem"),
                    "tls_key": str(data_dir / "agent.key"),
                }
            )
            agent = SimAgent(
                AgentConfig(
                    eid,
                    CONTROLLER_ID,
                    mtp=mtp,
                    mqtt_url=mqtt311_url,
                    mqtt_version="3.1.1",
                    controller_topic=topic,
                    agent_topic=f"{agent_base}/{eid}",
                    ws_url=f"wss://127.0.0.1:{ws_port}/usp",
                    tls_ca=str(authority.ca_path),
                    retry_s=0.3,
                    **login,
                )
            )
            agents.append(agent)
            tasks.append(asyncio.ensure_future(agent.run()))
        for agent in agents:  # MQTT: retried until the controller has subscribed
            await asyncio.wait_for(agent.connected.wait(), 20)
        import nats

        nc = await nats.connect(nats_url)
        registry = DeviceRegistry(mongo_db)
        try:
            for _ in range(200):
                devices = [
                    await asyncio.to_thread(registry.get_lua, a.config.endpoint_id) for a in agents
                ]
                if all(d and d["status"] == 2 and d["model"] for d in devices):
                    break
                await asyncio.sleep(0.1)
            assert all(d and d["status"] == 2 for d in devices), devices
            run = LuaRun(
                r"""
                local out = {}
                for i, sn in ipairs(args.sns) do
                  local r = send_usp_message(sn, {body = {request = {get = {
                    param_paths = {"Device.LocalAgent.EndpointID"}}}}})
                  out[i] = r["Device.LocalAgent.EndpointID"]
                end
                return out
            """,
                services=Services(nats=nc, mongo=mongo_db, devices=registry),
                args={"sns": [a.config.endpoint_id for a in agents]},
                limits=Limits(wall_seconds=30),
            )
            outcome = await run.run()
            assert outcome.status == "succeeded", outcome.error
            assert outcome.result == [a.config.endpoint_id for a in agents]
        finally:
            await nc.close()
    finally:
        for agent in agents:
            await agent.stop()
        for task in tasks:
            task.cancel()
        proc.send_signal(signal.SIGTERM)
        output = (await asyncio.to_thread(proc.communicate, timeout=20))[0].decode()
    assert proc.returncode == 0, output
