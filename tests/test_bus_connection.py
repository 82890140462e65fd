"""The platform's NATS client: cluster URLs, and no warning on a deliberate close."""

from __future__ import annotations

import logging

from oktoscripts.bus.connection import connect
from oktoscripts.launcher.embedded.ports import free_port


async def test_a_comma_separated_nats_url_connects_to_a_live_server_of_the_list(nats_url):
    dead = f"nats://127.0.0.1:{free_port()}"
    client = await connect("test-cluster", f"{dead}, {nats_url}", first_attempts=1)
    try:
        assert client.is_connected
        assert client.connected_url.port == int(nats_url.rsplit(":", 1)[1])
    finally:
        await client.close()


async def test_closing_the_client_logs_no_disconnect_warning(nats_url, caplog):
    client = await connect("test-close", nats_url)
    with caplog.at_level(logging.DEBUG, logger="oktoscripts.bus.connection"):
        await client.close()
    # Only this client's own records: a worker of another test may log on the same loop.
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name == "oktoscripts.bus.connection"
    ]
    assert warnings == []


async def test_a_server_that_falls_silent_is_left_for_another_of_the_cluster(tmp_path):
    """A NATS server whose machine vanished keeps its connections open and
    silent: the client gives it up after two unanswered pings and moves to
    another server of the cluster (it learnt of them from the first), instead
    of hanging on it for minutes."""
    import asyncio
    import time

    from oktoscripts.bus.connection import MAX_OUTSTANDING_PINGS, PING_INTERVAL_S
    from tests.cluster.natscluster import NatsCluster

    cluster = NatsCluster(tmp_path / "nats")
    cluster.start()
    frozen = cluster.nodes[0]
    client = await connect("test-frozen", frozen.url)
    try:
        while not client.discovered_servers:  # the cluster's INFO names the other servers
            await asyncio.sleep(0.05)
        cluster.freeze(frozen.name)
        frozen_at = time.monotonic()
        # Two unanswered pings and the reconnect; the margin is for a loaded machine (CI
        # saw 20 s pass with a load average of 8): what matters is seconds, not minutes.
        limit = PING_INTERVAL_S * (MAX_OUTSTANDING_PINGS + 4)
        while not client.is_connected or client.connected_url.port == frozen.port:
            assert time.monotonic() - frozen_at < limit, "still on the silent server"
            await asyncio.sleep(0.1)
        await client.flush(timeout=5)  # and it works there
    finally:
        await client.close()
        cluster.stop()
