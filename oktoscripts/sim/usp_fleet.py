"""A fleet of simulated USP agents against the configured controller
(``manage.py simulate --usp N`` calls ``run_usp_fleet``).

The agents prove who they are as the platform requires of real ones: a
device credential bound to their Endpoint IDs (``os::00D09E-<prefix>-*``)
for the MQTT broker, and over the WebSocket MTP a client certificate from
the platform's CA (when it is the generated one; else the credential).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path

from oktoscripts import config
from oktoscripts.sim.usp_agent import AgentConfig, SimAgent, run_fleet
from oktoscripts.usp import mqtt_topics

SIM_USERNAME = "usp-sim"


def fleet_endpoint_id(prefix: str, index: int) -> str:
    return f"os::00D09E-{prefix}-{index:05d}"


def fleet_configs(
    count: int,
    *,
    mtp: str = "mqtt",
    prefix: str = "sim",
    first: int = 1,
    username: str = "",
    password: str = "",
    certificates: dict[str, tuple[str, str]] | None = None,
) -> list[AgentConfig]:
    """``count`` agents from settings: MQTT to MQTT_URL (its credentials are the
    controller's: the agents log in with ``username``), or WebSocket to the
    controller's WebSocket MTP; ``mtp="mixed"`` alternates the two.
    ``certificates``: Endpoint ID -> (certificate, key) files."""
    from django.conf import settings

    mqtt_url = ""
    if settings.MQTT_URL:
        address = mqtt_topics.broker_address(settings.MQTT_URL)
        mqtt_url = mqtt_topics.broker_url(address.without_credentials())
    host = settings.USP_WS_HOST
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    scheme = "wss" if settings.USP_WS_TLS else "ws"
    configs = []
    for index in range(first, first + count):
        agent_mtp = mtp if mtp != "mixed" else ("mqtt" if index % 2 else "websocket")
        eid = fleet_endpoint_id(prefix, index)
        cert, key = (certificates or {}).get(eid, ("", ""))
        configs.append(
            AgentConfig(
                endpoint_id=eid,
                controller_id=settings.USP_ENDPOINT_ID,
                mtp=agent_mtp,
                index=index,
                mqtt_url=mqtt_url,
                mqtt_version=settings.USP_MQTT_VERSION,
                controller_topic=settings.USP_MQTT_TOPIC,
                agent_topic=mqtt_topics.agent_topic(settings.USP_MQTT_AGENT_TOPIC, eid),
                ws_url=f"{scheme}://{host}:{settings.USP_WS_PORT}/usp",
                username=username,
                password=password,
                tls_cert=cert,
                tls_key=key,
            )
        )
    return configs


def ensure_sim_credential(prefix: str = "sim") -> tuple[str, str]:
    """The fleet's device credential (a new password each start), bound to its agents."""
    from oktoscripts.devices.client import default_credentials

    password = secrets.token_urlsafe(16).replace(".", "")
    credentials = default_credentials()
    credentials.create_or_update(SIM_USERNAME, password, devices=[f"os::00D09E-{prefix}-*"])
    return SIM_USERNAME, password


def ensure_sim_certificates(endpoint_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Client certificates from the platform's generated CA (none with an operator's
    PKI, which this process cannot sign with), kept under the data directory."""
    from django.conf import settings

    from oktoscripts.pki import Authority, pki_dir

    if config.is_set("OKTOSCRIPTS_TLS_CERT"):
        return {}
    directory = Path(settings.DATA_DIR) / "sim" / "usp-certs"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    authority = Authority.ensure(pki_dir())
    files = {}
    for eid in endpoint_ids:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", eid)
        cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
        if not (cert.exists() and key.exists()):
            pem, key_pem = authority.issue_usp_agent(eid)
            key.touch(mode=0o600)
            key.write_bytes(key_pem)
            cert.write_bytes(pem)
        files[eid] = (str(cert), str(key))
    return files


async def run_usp_fleet(count: int, *, mtp: str = "mqtt", prefix: str = "sim") -> None:
    """Run ``count`` agents until cancelled."""
    from django.conf import settings

    username, password = await asyncio.to_thread(ensure_sim_credential, prefix)
    certificates = {}
    if mtp != "mqtt" and settings.USP_WS_TLS:
        eids = [fleet_endpoint_id(prefix, i) for i in range(1, count + 1)]
        certificates = await asyncio.to_thread(ensure_sim_certificates, eids)
    agents = [
        SimAgent(c)
        for c in fleet_configs(
            count,
            mtp=mtp,
            prefix=prefix,
            username=username,
            password=password,
            certificates=certificates,
        )
    ]
    try:
        await run_fleet(agents)
    finally:
        for agent in agents:
            await agent.stop()
