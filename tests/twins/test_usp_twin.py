"""A USP device twin, against the real USP controller over MQTT: snapshotted
from a simulated agent (GetSupportedDM + Get + GetInstances of Device.), it
answers like its original, with the same USP error codes; writes change the
twin only."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import json_format

from oktoscripts.twins import store
from oktoscripts.usp import messages
from oktoscripts.usp.client import call_agent

from .conftest import until


@pytest.fixture
async def usp_env(nats_url, mongo_db, mqtt311, mqtt311_url):
    env = await start_env_311(nats_url, mongo_db, mqtt311, mqtt311_url)
    yield env
    from tests.usp.conftest import stop_env

    await stop_env(env)


async def start_env_311(nats_url, mongo_db, mqtt311, mqtt311_url):
    from tests.usp.conftest import start_env

    return await start_env(
        "mqtt-3.1.1", nats_url=nats_url, mongo_db=mongo_db, mqtt_url=mqtt311_url, broker=mqtt311
    )


async def ask(nc, eid, kind, **fields):
    answer = await call_agent(nc, eid, messages.request(kind, msg_id="same", **fields), 10)
    assert not isinstance(answer, dict), answer
    return json_format.MessageToDict(answer.body, preserving_proto_field_name=True)


async def test_usp_twin_answers_like_its_original(usp_env, host_factory, mongo_db):
    env = usp_env
    original = await env.start_agent("orig")
    eid = original.config.endpoint_id
    host = host_factory(
        acs_url="http://127.0.0.1:9/unused",
        usp_config=lambda e, u, p: env.agent_config("twin", endpoint_id=e, username=u, password=p),
    )
    twin = await asyncio.to_thread(store.request, mongo_db, eid, by="test")
    assert twin["_id"] == eid + "-twin"
    await host.step()
    doc = await asyncio.to_thread(store.get, mongo_db, twin["_id"])
    assert doc["state"] == "running", doc
    device = await env.wait_device(twin["_id"], lambda d: d.get("status") == 2)
    assert device["twin"] is True
    nc, tid = env.nc, twin["_id"]

    for kind, fields in (
        ("get", {"param_paths": ["Device."]}),
        (
            "get_supported_dm",
            {
                "obj_paths": ["Device."],
                "return_params": True,
                "return_commands": True,
                "return_events": True,
            },
        ),
        ("get_instances", {"obj_paths": ["Device."]}),
        ("get", {"param_paths": ["Device.NoSuch."]}),
        ("get", {"param_paths": ["Device.WiFi.SSID.9.SSID"]}),
    ):
        assert await ask(nc, tid, kind, **fields) == await ask(nc, eid, kind, **fields), kind

    setting = {
        "update_objs": [
            {
                "obj_path": "Device.WiFi.SSID.1.",
                "param_settings": [{"param": "SSID", "value": "twin-net", "required": True}],
            }
        ]
    }
    answer = await ask(nc, tid, "set", **setting)
    assert "oper_success" in str(answer)
    got = await ask(nc, tid, "get", param_paths=["Device.WiFi.SSID.1.SSID"])
    assert "twin-net" in str(got)
    assert original.dm.values["Device.WiFi.SSID.1.SSID"] != "twin-net"

    read_only = {
        "update_objs": [
            {
                "obj_path": "Device.DeviceInfo.",
                "param_settings": [{"param": "SerialNumber", "value": "x", "required": True}],
            }
        ]
    }
    refused = await ask(nc, tid, "set", **read_only)
    assert refused == await ask(nc, eid, "set", **read_only)
    assert refused["error"]["param_errs"][0]["err_code"] == 7013

    add = {"create_objs": [{"obj_path": "Device.WiFi.SSID."}]}
    assert await ask(nc, tid, "add", **add) == await ask(nc, eid, "add", **add)

    await asyncio.to_thread(store.reset, mongo_db, tid)
    await host.step()
    got = await ask(nc, tid, "get", param_paths=["Device.WiFi.SSID.1.SSID"])
    assert "twin-net" not in str(got)

    await asyncio.to_thread(store.delete, mongo_db, tid)
    await host.step()
    await until(lambda: mongo_db.devices.find_one({"_id": tid}) is None)
