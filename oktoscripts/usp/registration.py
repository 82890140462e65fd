"""Agents in the device registry: registered on Boot!, OnBoardRequest and
MTP connect (DeviceInfo read with one Get), marked offline on disconnect.

Registry calls are pymongo (blocking): they run in threads, never on the
controller's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from oktoscripts.usp import messages, results
from oktoscripts.usp.controller import AgentLink, AgentUnavailable, Controller
from oktoscripts.usp.messages import Msg

log = logging.getLogger(__name__)

# DeviceInfo parameter -> keyword of DeviceRegistry.upsert_usp
DEVICE_INFO = {
    "Manufacturer": "vendor",
    "ModelName": "model",
    "SoftwareVersion": "version",
    "HardwareVersion": "hw_version",
    "ProductClass": "product_class",
    "ManufacturerOUI": "oui",
}
DEVICE_INFO_TIMEOUT_S = 15.0
# A Boot! right after the MTP connect registration (the usual start of an
# agent) does not need a second DeviceInfo read.
FRESH_S = 5.0


def device_info_request() -> Msg:
    return messages.request("get", param_paths=[f"Device.DeviceInfo.{p}" for p in DEVICE_INFO])


class Registrar:
    """Keeps the registry in step with what the controller sees of its agents."""

    def __init__(self, controller: Controller, registry: Any, *, owner: str) -> None:
        self.controller = controller
        self.registry = registry
        self.owner = owner
        self.registered: dict[str, float] = {}  # endpoint id -> monotonic time of last read
        self._running: dict[str, asyncio.Task] = {}
        self._again: set[str] = set()
        controller.on_agent_seen = self.agent_seen
        controller.on_agent_gone = self.agent_gone
        controller.unknown_agent_code = self.unknown_agent_code

    def agent_seen(self, link: AgentLink, reason: str, msg: Msg | None) -> None:
        eid = link.endpoint_id
        if reason == "boot" and time.monotonic() - self.registered.get(eid, -FRESH_S) < FRESH_S:
            return
        if eid in self._running:
            if reason in ("boot", "onboard"):
                self._again.add(eid)  # read DeviceInfo again once this round is done
            return
        self._running[eid] = asyncio.get_running_loop().create_task(
            self._register(link, reason, msg)
        )

    async def _register(self, link: AgentLink, reason: str, msg: Msg | None) -> None:
        eid = link.endpoint_id
        try:
            while True:
                self._again.discard(eid)
                await self._register_once(link, reason, msg)
                if eid not in self._again:
                    break
        except Exception:  # never lose the controller to a registry hiccup
            log.exception("usp: registering %s failed", eid)
        finally:
            self._running.pop(eid, None)

    async def _register_once(self, link: AgentLink, reason: str, msg: Msg | None) -> None:
        eid = link.endpoint_id
        fields: dict[str, Any] = {}
        if msg is not None and messages.request_kind(msg) == "notify":
            onboard = msg.body.request.notify.on_board_req
            fields.update(
                {"oui": onboard.oui or None, "product_class": onboard.product_class or None}
            )
        try:
            response = await self.controller.request(
                eid, device_info_request(), DEVICE_INFO_TIMEOUT_S
            )
            values = results.script_result("get", response)
            if results.is_error(values):
                log.warning("usp: %s answered the DeviceInfo Get with %s", eid, values)
            else:
                for param, key in DEVICE_INFO.items():
                    value = values.get(f"Device.DeviceInfo.{param}")
                    if value:
                        fields[key] = value
        except (AgentUnavailable, TimeoutError) as exc:
            log.warning("usp: cannot read DeviceInfo of %s: %s", eid, exc or "timeout")
            if eid not in self.controller.links:
                return
            if reason == "record":
                # Neither a Boot!, an onboarding nor an MTP connect: a stray record
                # from an endpoint that does not answer is no device to register.
                self.controller.forget(link)
                return
        peer = link.address.get("peer", "")
        if peer:
            fields["ip"] = peer.rsplit(":", 1)[0]
        result = await asyncio.to_thread(
            self.registry.upsert_usp,
            eid,
            mtp=link.mtp,
            mtp_address=link.address,
            owner=self.owner,
            **fields,
        )
        self.registered[eid] = time.monotonic()
        log.info(
            "usp: agent %s %s over %s (%s)",
            eid,
            "registered" if result.inserted else "online",
            link.mtp,
            reason,
        )

    def agent_gone(self, endpoint_id: str, mtp: str) -> None:
        async def mark_offline() -> None:
            try:
                await asyncio.to_thread(self.registry.set_offline, endpoint_id, "usp", mtp=mtp)
            except Exception:
                log.exception("usp: marking %s offline failed", endpoint_id)

        asyncio.get_running_loop().create_task(mark_offline())

    def agent_silent(self, link: AgentLink) -> None:
        """An MQTT agent's lease ran out (liveness.py): offline, its topic kept."""

        async def mark_offline() -> None:
            try:
                await asyncio.to_thread(
                    self.registry.set_offline,
                    link.endpoint_id,
                    "usp",
                    mtp=link.mtp,
                    mtp_state="silent",
                )
            except Exception:
                log.exception("usp: marking %s offline failed", link.endpoint_id)

        asyncio.get_running_loop().create_task(mark_offline())

    async def unknown_agent_code(self, endpoint_id: str) -> str:
        """ "503" for a known agent that is not connected, "404" for an unknown one."""
        try:
            doc = await asyncio.to_thread(self.registry.get, endpoint_id)
        except Exception:
            return "503"
        return "503" if doc else "404"

    async def wait_idle(self) -> None:
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
