"""A fleet of simulated USP agents against the configured controller
(``manage.py simulate --usp N`` calls ``run_usp_fleet``)."""

from __future__ import annotations

import secrets

from oktoscripts.sim.usp_agent import AgentConfig, SimAgent, run_fleet

SIM_USERNAME = "usp-sim"


def fleet_configs(
    count: int,
    *,
    mtp: str = "mqtt",
    prefix: str = "sim",
    first: int = 1,
    username: str = "",
    password: str = "",
) -> list[AgentConfig]:
    """``count`` agents from settings: MQTT to MQTT_URL, or WebSocket to the controller's
    WebSocket MTP; ``mtp="mixed"`` alternates the two."""
    from django.conf import settings

    configs = []
    for index in range(first, first + count):
        agent_mtp = mtp if mtp != "mixed" else ("mqtt" if index % 2 else "websocket")
        configs.append(
            AgentConfig(
                endpoint_id=f"os::00D09E-{prefix}-{index:05d}",
                controller_id=settings.USP_ENDPOINT_ID,
                mtp=agent_mtp,
                index=index,
                mqtt_url=settings.MQTT_URL,
                mqtt_version=settings.USP_MQTT_VERSION,
                controller_topic=settings.USP_MQTT_TOPIC,
                ws_url=f"ws://{settings.USP_WS_HOST}:{settings.USP_WS_PORT}/usp",
                username=username,
                password=password,
            )
        )
    return configs


def ensure_sim_credential() -> tuple[str, str]:
    """A device credential for the WebSocket agents of the fleet (new password each start)."""
    from oktoscripts.devices.client import default_credentials

    password = secrets.token_urlsafe(16)
    default_credentials().create_or_update(SIM_USERNAME, password)
    return SIM_USERNAME, password


async def run_usp_fleet(count: int, *, mtp: str = "mqtt", prefix: str = "sim") -> None:
    """Run ``count`` agents until cancelled."""
    username = password = ""
    if mtp in ("websocket", "mixed"):
        import asyncio

        username, password = await asyncio.to_thread(ensure_sim_credential)
    agents = [
        SimAgent(c)
        for c in fleet_configs(count, mtp=mtp, prefix=prefix, username=username, password=password)
    ]
    try:
        await run_fleet(agents)
    finally:
        for agent in agents:
            await agent.stop()
