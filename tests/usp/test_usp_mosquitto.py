"""The Mosquitto set-up README.md ("Security") documents, on a Mosquitto of
this test's own: agents and the controller log in with client certificates
(the certificate's common name is the username), ACL patterns keep each
agent to its own topics, and the controller drops what an agent sends in
another's name on its own topic. A rogue agent with a valid certificate of
its own cannot answer in place of another."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import subprocess
from pathlib import Path

import aiomqtt
import pytest

from oktoscripts import pki
from oktoscripts.launcher.embedded.ports import free_port, wait_for_port
from oktoscripts.usp import messages, mqtt_topics, records

from .conftest import SESSION, certificate_files, start_env, stop_env
from .test_usp_trust import get_model, until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
ACL = """user usp-controller
topic read {controller}/#
topic write {agents}/#
pattern write {controller}/%u/#
pattern read {agents}/%u/#
"""


@pytest.fixture(scope="module")
def mosquitto(authority, tmp_path_factory):
    """(mqtts URL, controller topic, agent topic) of a Mosquitto configured as documented."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("no mosquitto")
    ca, server, _ = authority
    directory = tmp_path_factory.mktemp("mosquitto")
    controller, agents = f"okto-mosq-{SESSION}/controller", f"okto-mosq-{SESSION}/agent"
    (directory / "usp.acl").write_text(ACL.format(controller=controller, agents=agents))
    port = free_port()
    # As root, Mosquitto would switch to its own user, who cannot read our files.
    (directory / "mosquitto.conf").write_text(f"""user {getpass.getuser()}
listener {port} 127.0.0.1
cafile {ca.ca_path}
certfile {server.cert}
keyfile {server.key}
require_certificate true
use_identity_as_username true
allow_anonymous false
acl_file {directory / "usp.acl"}
""")
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(directory / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for_port("127.0.0.1", port, 10), "mosquitto did not start"
        yield f"mqtts://localhost:{port}", controller, agents
    finally:
        proc.terminate()
        proc.wait(10)


async def test_the_documented_mosquitto_acls_keep_agents_to_their_own_topics(
    mosquitto, authority, nats_url, mongo_db, tmp_path
):
    url, controller_topic, agent_base = mosquitto
    ca = authority[0]
    controller_cert = certificate_files(tmp_path, ca, "usp-controller", "controller")
    env = await start_env(
        "mosq",
        nats_url=nats_url,
        mongo_db=mongo_db,
        mqtt_url=url,
        mqtt_topic=controller_topic,
        mqtt_agent_topic=agent_base,
        mqtt_ca=str(ca.ca_path),
        mqtt_cert=controller_cert,
    )
    try:

        def with_cert(name: str) -> dict:
            eid = env.agent_config(name).endpoint_id
            cert, key = certificate_files(tmp_path, ca, eid, name)
            return {
                "tls_ca": str(ca.ca_path),
                "tls_cert": cert,
                "tls_key": key,
                "username": "",
                "password": "",
                "agent_topic": mqtt_topics.agent_topic(agent_base, eid),
            }

        victim = await env.start_agent("victim", mtp="mqtt", **with_cert("victim"))
        rogue = await env.start_agent("rogue", mtp="mqtt", **with_cert("rogue"))
        await env.process.registrar.wait_idle()
        eid = victim.config.endpoint_id
        assert (await get_model(env, eid)) == {"Device.DeviceInfo.ModelName": "USP-GW-1"}

        # The rogue agent, with its own valid certificate, answers a Get meant for the
        # victim: on the victim's topic (Mosquitto drops it) and on its own (the
        # controller drops it). The script gets the timeout, not the forged value.
        victim.hooks.silent = True
        stats = env.controller.stats
        dropped = stats.get("unroutable", 0)
        script = asyncio.ensure_future(get_model(env, eid, wall=4.0))
        await until(lambda: any(k[0] == eid for k in env.controller.pending))
        msg_id = next(k[1] for k in env.controller.pending if k[0] == eid)
        forged, body = messages.response_to(
            messages.request("get", msg_id, param_paths=["x"]), "get"
        )
        body.req_path_results.add(requested_path="Device.DeviceInfo.ModelName")
        record = records.encode_msg_record(forged, to_id=env.controller.endpoint_id, from_id=eid)
        address = mqtt_topics.broker_address(url)
        async with aiomqtt.Client(
            address.host,
            address.port,
            identifier="rogue-raw",
            tls_context=rogue.config.tls_context(),
            timeout=5,
        ) as raw:
            for to in (
                mqtt_topics.agent_publish_topic(controller_topic, eid),
                mqtt_topics.agent_publish_topic(controller_topic, rogue.config.endpoint_id),
            ):
                await raw.publish(mqtt_topics.publish_topic_v311(to, "x/y"), record)
        answer = await script
        victim.hooks.silent = False
        assert answer.get("error_code") == "408", answer
        assert stats.get("unroutable", 0) == dropped + 1

        # Without a client certificate, no login at all.
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                address.host,
                address.port,
                identifier="anonymous",
                tls_context=pki.client_context(ca.ca_path),
                timeout=5,
            ):
                pass
    finally:
        await stop_env(env)
