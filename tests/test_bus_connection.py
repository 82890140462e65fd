"""The platform's NATS client: cluster URLs, and no warning on a deliberate close."""

from __future__ import annotations

import logging

from oktoscripts.bus.connection import connect
from oktoscripts.embedded.ports import free_port


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
        r for r in caplog.records
        if r.levelno >= logging.WARNING and r.name == "oktoscripts.bus.connection"
    ]
    assert warnings == []
