"""Whether MQTT agents are still there: leases and probes.

A WebSocket agent is online while its connection is up. An MQTT agent talks
to a broker, not to the controller: when it stops without a DisconnectRecord
or an MQTT Will (the BBF reference agent sets none), nothing tells the
controller. So each MQTT agent holds a lease of ``lease_s`` seconds: every
record it sends renews it; an agent silent for half its lease is probed with
a one-parameter Get, and one that does not answer that within the other half
is marked offline (``silent`` in the registry, its topic kept: a later
request still tries it, and an answer brings it back online). A stopped agent
is thus offline between 1 and 1.25 leases (plus one check interval) after its
last record.

After a restart the controller does not know which agents of its previous run
still hold their MQTT sessions; they send nothing by themselves. ``recover``
probes each of them at once (``RECOVER_CONCURRENCY`` at a time): those that
answer are registered online again within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from oktoscripts.usp import messages
from oktoscripts.usp.controller import AgentLink, AgentUnavailable, Controller

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 300.0
PROBE_PATH = "Device.DeviceInfo.SoftwareVersion"
RECOVER_CONCURRENCY = 200
RECOVER_TIMEOUT_S = 5.0


def probe_request() -> messages.Msg:
    return messages.request("get", param_paths=[PROBE_PATH])


class Liveness:
    """The leases of one controller's MQTT agents."""

    def __init__(
        self, controller: Controller, lease_s: float, on_expired: Callable[[AgentLink], None]
    ) -> None:
        self.controller = controller
        self.lease_s = lease_s
        self.on_expired = on_expired
        self.heard: dict[str, float] = {}  # endpoint id -> monotonic time of its last record
        self._probing: dict[str, asyncio.Task] = {}
        controller.on_heard = self._heard

    def _heard(self, link: AgentLink) -> None:
        self.heard[link.endpoint_id] = time.monotonic()

    async def run(self) -> None:
        """Check the leases every quarter lease, until cancelled."""
        try:
            while True:
                await asyncio.sleep(self.lease_s / 4)
                self.check()
        finally:
            for task in list(self._probing.values()):
                task.cancel()

    def check(self, now: float | None = None) -> None:
        """Probe every MQTT agent silent for half its lease (and not probed already)."""
        now = time.monotonic() if now is None else now
        for eid, link in list(self.controller.links.items()):
            if link.mtp != "mqtt" or eid in self._probing:
                continue
            last = self.heard.setdefault(eid, now)  # a route just learnt: its lease starts
            if now - last >= self.lease_s / 2:
                task = asyncio.get_running_loop().create_task(self._probe(link, last))
                self._probing[eid] = task
                task.add_done_callback(lambda _t, e=eid: self._probing.pop(e, None))
        for eid in [e for e in self.heard if e not in self.controller.links]:
            del self.heard[eid]

    async def _probe(self, link: AgentLink, last: float) -> None:
        eid = link.endpoint_id
        with contextlib.suppress(AgentUnavailable, TimeoutError):
            await self.controller.request(eid, probe_request(), self.lease_s / 2)
        if self.heard.get(eid, 0.0) > last:
            return  # it answered (or said something else meanwhile): renewed
        if self.controller.links.get(eid) is not link:
            return  # gone or replaced meanwhile: that path took care of it
        log.info(
            "usp: MQTT agent %s silent for %.0f s and not answering: offline",
            eid,
            time.monotonic() - last,
        )
        self.controller.forget(link)
        self.heard.pop(eid, None)
        self.on_expired(link)

    async def recover(self, links: list[AgentLink]) -> int:
        """Probe the agents a previous run of this controller held (routes from the
        registry, unconfirmed); those that answer are registered again by the
        record path. Returns how many answered."""
        gate = asyncio.Semaphore(RECOVER_CONCURRENCY)

        async def one(link: AgentLink) -> bool:
            async with gate:
                self.controller.links.setdefault(link.endpoint_id, link)
                try:
                    await self.controller.request(
                        link.endpoint_id, probe_request(), RECOVER_TIMEOUT_S
                    )
                    return True
                except (AgentUnavailable, TimeoutError):
                    self.controller.forget(link)
                    return False

        answered = sum(await asyncio.gather(*(one(link) for link in links)))
        if links:
            log.info("usp: %d of %d MQTT agents of the previous run answered", answered, len(links))
        return answered
