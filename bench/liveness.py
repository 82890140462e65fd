"""USP agent liveness: a controller restart, and MQTT agents that stop silently.

    .venv/bin/python -m bench.liveness [--agents 500] [--silent 50] [--lease 20]

Starts the embedded nats-server (bus and MQTT 3.1.1 listener) and SecantusDB,
the USP controller as its own process (``manage.py usp`` with
``OKTOSCRIPTS_USP_MQTT_LEASE``), and ``--agents`` simulated MQTT agents in
this process. Figures (issue 17's targets):

- the controller is restarted while the agents keep their MQTT sessions: the
  time from the new process's start until every agent is registered online
  again (target <= 10 s);
- ``--silent`` agents stop answering without a DisconnectRecord or a Will (as
  the BBF reference agent does when it dies): the time until each is offline
  in the registry, against its lease (target <= 2 x the lease), and how many
  of the others went offline wrongly (target 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.usp import CONTROLLER_ID, WS_PASSWORD, WS_USER, Platform, setup_environment


async def wait_all(registry, serials: list[str], condition, timeout: float) -> list[float]:  # noqa: ANN001
    """Seconds until each device met ``condition`` (polling the registry)."""
    started = time.monotonic()
    pending, took = set(serials), {}
    while pending and time.monotonic() - started < timeout:
        for doc in await asyncio.to_thread(
            lambda: list(registry.collection.find({"_id": {"$in": list(pending)}}))
        ):
            if condition(doc):
                took[doc["_id"]] = time.monotonic() - started
                pending.discard(doc["_id"])
        await asyncio.sleep(0.1)
    if pending:
        print(f"  {len(pending)} of {len(serials)} never got there within {timeout:g} s")
    return sorted(took.values())


async def run(args: argparse.Namespace, platform: Platform) -> None:
    from django.conf import settings

    from oktoscripts.devices.client import new_client
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.devices.registry import DeviceRegistry
    from oktoscripts.sim.usp_agent import AgentConfig, SimAgent, run_fleet
    from oktoscripts.usp import mqtt_topics

    db = new_client(platform.mongo_uri)[settings.MONGO_DB_NAME]
    registry = DeviceRegistry(db)
    store = CredentialStore(db)
    store.create_or_update(WS_USER, WS_PASSWORD)
    store.bind(WS_USER, ["os::bench-*"])
    os.environ["OKTOSCRIPTS_USP_MQTT_LEASE"] = str(args.lease)
    platform.start_controller(platform.mqtt_url)
    url = mqtt_topics.broker_url(
        mqtt_topics.broker_address(platform.mqtt_url).without_credentials()
    )
    agents = [
        SimAgent(
            AgentConfig(
                f"os::bench-live-{i:05d}",
                CONTROLLER_ID,
                mtp="mqtt",
                index=i + 1,
                mqtt_url=url,
                mqtt_version="3.1.1",
                controller_topic=platform.topic,
                agent_topic=f"{platform.agent_topic}/os::bench-live-{i:05d}",
                username=WS_USER,
                password=WS_PASSWORD,
                retry_s=0.5,
            )
        )
        for i in range(args.agents)
    ]
    serials = [a.config.endpoint_id for a in agents]
    fleet = asyncio.ensure_future(run_fleet(agents))
    try:
        took = await wait_all(registry, serials, lambda d: d.get("status") == 2, 300)
        print(f"{args.agents} MQTT agents registered in {took[-1]:.1f} s (lease {args.lease:g} s)")
        await asyncio.sleep(2)
        restarted = time.time()
        platform.start_controller(platform.mqtt_url)  # stops the running one first
        took = await wait_all(
            registry,
            serials,
            lambda d: d.get("status") == 2 and d["last_seen"].timestamp() >= restarted,
            60,
        )
        verdict = "meets" if len(took) == len(serials) and took[-1] <= 10 else "MISSES"
        print(
            f"controller restarted: every answering agent online again after "
            f"{took[-1]:.1f} s (p50 {took[len(took) // 2]:.1f} s; target <= 10 s: {verdict})"
        )
        silent = agents[: args.silent]
        for agent in silent:
            agent.hooks.silent = True
        took = await wait_all(
            registry,
            [a.config.endpoint_id for a in silent],
            lambda d: d.get("status") == 0,
            4 * args.lease,
        )
        wrong = await asyncio.to_thread(
            registry.collection.count_documents,
            {"_id": {"$in": serials[args.silent :]}, "status": 0},
        )
        verdict = (
            "meets"
            if len(took) == len(silent) and took[-1] <= 2 * args.lease and wrong == 0
            else "MISSES"
        )
        print(
            f"{len(silent)} agents stopped silently: offline after {took[0]:.1f} to "
            f"{took[-1]:.1f} s (lease {args.lease:g} s; target <= {2 * args.lease:g} s); "
            f"others wrongly offline: {wrong} ({verdict})"
        )
    finally:
        for agent in agents:
            await agent.stop()
        fleet.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--silent", type=int, default=50)
    parser.add_argument("--lease", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp_name:
        tmp = Path(tmp_name)
        setup_environment(tmp)
        import django

        django.setup()
        platform = Platform(tmp)
        try:
            asyncio.run(run(args, platform))
        finally:
            platform.close()


if __name__ == "__main__":
    main()
