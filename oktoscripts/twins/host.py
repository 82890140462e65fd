"""The twin host: takes the snapshots of requested twins and runs every twin
in the platform's simulator (``manage.py twins run``, started by ``up``).

It reconciles what the ``twins`` collection asks for with what it runs,
every POLL_S: a requested twin is snapshotted (through the ACS or the USP
controller, like a script's calls), then started as a simulated CPE or USP
agent answering from the snapshot; a reset twin gets a fresh model from its
snapshot; a deleted one is stopped and its device forgotten. Each twin
proves itself to the platform like any device: a credential of its own,
bound to its serial, made when the twin starts.

One twin host per installation (it holds the twins' connections, like the
USP controller holds its agents').
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from oktoscripts.devices.credentials import CredentialStore
from oktoscripts.sim import twin_models
from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions, FleetCredentials, SimulatedCpe
from oktoscripts.sim.usp_agent import AgentConfig, SimAgent
from oktoscripts.twins import snapshot, store

log = logging.getLogger(__name__)

POLL_S = 0.5


@dataclass
class HostOptions:
    """Where twins reach the platform. ``usp_config(endpoint_id, username,
    password)`` makes a USP twin's agent configuration (its MTP)."""

    acs_url: str
    ca_file: str | None = None
    usp_config: Callable[[str, str, str], AgentConfig] | None = None
    periodic_interval: int = 300


@dataclass
class _Running:
    generation: int
    device: Any  # SimulatedCpe | SimAgent
    task: asyncio.Task | None = None
    username: str = ""


@dataclass
class TwinHost:
    db: Database
    nc: Any
    options: HostOptions
    credentials: CredentialStore
    running: dict[str, _Running] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._secret = FleetCredentials(secrets.token_bytes(32))
        self._fleet = CpeFleet(0, CpeOptions(acs_url=self.options.acs_url))
        self._started = False

    async def run(self) -> None:
        """Reconcile until cancelled; a failing pass is logged and tried again."""
        try:
            while True:
                try:
                    await self.step()
                except Exception:  # noqa: BLE001 - the host must outlive a bad pass
                    log.exception("twin host: a pass failed")
                await asyncio.sleep(POLL_S)
        finally:
            await self.stop()

    async def step(self) -> None:
        """One pass: snapshot what is requested, start, reset and stop twins."""
        if not self._started:
            await asyncio.to_thread(store.ensure_indexes, self.db)
            await self._fleet.cr_server.start()
            self._started = True
        wanted = await asyncio.to_thread(store.all_twins, self.db)
        for doc in wanted:
            if doc["state"] == "requested":
                await self._snapshot(doc)
            if doc["state"] == "running":
                await self._keep_running(doc)
        gone = set(self.running) - {d["_id"] for d in wanted if d["state"] == "running"}
        for serial in gone:
            await self._stop(serial, forget=True)

    async def stop(self) -> None:
        for serial in list(self.running):
            await self._stop(serial, forget=False)
        if self._started:
            await self._fleet.cr_server.stop()

    # ---- snapshot ----------------------------------------------------------------------

    async def _snapshot(self, doc: dict) -> None:
        serial, source = doc["_id"], doc["source"]
        await asyncio.to_thread(store.set_state, self.db, serial, "snapshotting")
        take = snapshot.take_cwmp if doc["protocol"] == "cwmp" else snapshot.take_usp
        try:
            data = await take(self.nc, source)
            if doc["protocol"] == "cwmp":  # the twin speaks the CWMP version the original spoke
                data["cwmp_ns"] = await asyncio.to_thread(self._cwmp_ns_of, source)
        except snapshot.SnapshotError as exc:
            log.warning("twin %s: cannot read %s: %s", serial, source, exc)
            await asyncio.to_thread(store.set_state, self.db, serial, "failed", error=str(exc))
            doc["state"] = "failed"
            return
        version = await asyncio.to_thread(store.save_snapshot, self.db, source, data)
        await asyncio.to_thread(store.set_state, self.db, serial, "running", snapshot=version)
        doc.update(state="running", snapshot=version)
        log.info(
            "twin %s: snapshot %d of %s (%d parameters)",
            serial,
            version,
            source,
            snapshot.count(data),
        )

    def _cwmp_ns_of(self, serial: str) -> str:
        """The CWMP namespace device ``serial`` spoke in its last Inform ("" unknown)."""
        found = self.db["devices"].find_one({"_id": serial}, {"cwmp.cwmp_ns": 1}) or {}
        return (found.get("cwmp") or {}).get("cwmp_ns") or ""

    # ---- running -----------------------------------------------------------------------

    async def _keep_running(self, doc: dict) -> None:
        serial = doc["_id"]
        held = self.running.get(serial)
        if held is not None and held.generation == doc.get("generation", 0):
            return
        snap = await asyncio.to_thread(store.load_snapshot, self.db, doc["source"], doc["snapshot"])
        if held is not None:  # a reset: the same device, its model back to the snapshot
            self._load_model(held.device, doc, snap["data"])
            held.generation = doc.get("generation", 0)
            log.info("twin %s: reset to snapshot %d", serial, doc["snapshot"])
            return
        await asyncio.to_thread(store.mark_device, self.db, doc, snap["identity"])
        try:
            if doc["protocol"] == "cwmp":
                self.running[serial] = await self._start_cpe(doc, snap)
            else:
                self.running[serial] = await self._start_agent(doc, snap)
        except Exception as exc:  # noqa: BLE001 - one twin's failure is its own
            log.exception("twin %s: cannot start", serial)
            await asyncio.to_thread(store.set_state, self.db, serial, "failed", error=str(exc))

    def _load_model(self, device: Any, doc: dict, data: dict) -> None:
        if isinstance(device, SimulatedCpe):
            model = twin_models.cwmp_model(data)
            ms = model.root + "ManagementServer."
            # Where this twin is reached and reaches the ACS, not its original.
            for name, value in (
                (ms + "URL", self.options.acs_url),
                (ms + "ConnectionRequestURL", f"{self._fleet.cr_server.base_url}/{doc['_id']}"),
            ):
                if name in model.params:
                    model.params[name].value = value
            # The connection-request login the ACS gave this twin stays (it has no other).
            if isinstance(device.dm, twin_models.CwmpTwinModel):
                for name in (ms + "ConnectionRequestUsername", ms + "ConnectionRequestPassword"):
                    if name in model.params and name in device.dm.params:
                        model.params[name].value = device.dm.params[name].value
            device.dm = model
        else:
            device.dm = twin_models.usp_model(data)

    async def _start_cpe(self, doc: dict, snap: dict) -> _Running:
        serial = doc["_id"]
        source_doc = await asyncio.to_thread(self.db["devices"].find_one, {"_id": doc["source"]})
        cwmp = (source_doc or {}).get("cwmp") or {}
        oui = cwmp.get("oui") or snap["identity"].get("oui") or "000000"
        ns = snap["data"].get("cwmp_ns") or cwmp.get("cwmp_ns") or ""
        options = CpeOptions(
            acs_url=self.options.acs_url,
            ca_file=self.options.ca_file,
            credentials=self._secret,
            oui=oui,
            manufacturer=snap["identity"].get("vendor") or "Oktosim",
            periodic_interval=self.options.periodic_interval,
            cwmp_minor=_cwmp_minor(ns),
        )
        username, password = self._secret.of(oui, serial)
        await asyncio.to_thread(self.credentials.create_or_update, username, password)
        cpe = SimulatedCpe(
            serial,
            len(self._fleet.cpes),
            options,
            self._fleet.cr_server.base_url,
            self._fleet.stats,
        )
        self._load_model(cpe, doc, snap["data"])
        self._fleet.cpes.append(cpe)
        self._fleet.by_serial[serial] = cpe
        cpe.start()
        log.info("twin %s of %s: started (CWMP)", serial, doc["source"])
        return _Running(doc.get("generation", 0), cpe, username=username)

    async def _start_agent(self, doc: dict, snap: dict) -> _Running:
        serial = doc["_id"]
        username = "twin-" + hashlib.sha256(serial.encode()).hexdigest()[:16]
        password = secrets.token_urlsafe(18)
        await asyncio.to_thread(
            self.credentials.create_or_update, username, password, devices=[serial]
        )
        make = self.options.usp_config or default_usp_config
        agent = SimAgent(make(serial, username, password))
        self._load_model(agent, doc, snap["data"])
        task = asyncio.get_running_loop().create_task(agent.run())
        log.info("twin %s of %s: started (USP)", serial, doc["source"])
        return _Running(doc.get("generation", 0), agent, task, username)

    async def _stop(self, serial: str, *, forget: bool) -> None:
        held = self.running.pop(serial)
        await held.device.stop()
        if held.task is not None:
            held.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await held.task
        if isinstance(held.device, SimulatedCpe):
            self._fleet.by_serial.pop(serial, None)
            with contextlib.suppress(ValueError):
                self._fleet.cpes.remove(held.device)
        if forget:  # deleted: no trace of it may stay (it may have spoken since)
            await asyncio.to_thread(self._forget, serial, held.username)
            log.info("twin %s: stopped and forgotten", serial)

    def _forget(self, serial: str, username: str) -> None:
        from oktoscripts.devices.registry import DeviceRegistry

        if self.db[store.TWINS].find_one({"_id": serial}) is None:
            DeviceRegistry(self.db).delete(serial)
        if username:
            self.credentials.delete(username)


def _cwmp_minor(namespace: str) -> int:
    """1-0 .. 1-4 from ``urn:dslforum-org:cwmp-1-N`` (1-2 when unknown: the version
    most CPEs in the field speak)."""
    from oktoscripts.cwmp.soap import CWMP_NAMESPACES

    return CWMP_NAMESPACES.index(namespace) if namespace in CWMP_NAMESPACES else 2


def default_usp_config(endpoint_id: str, username: str, password: str) -> AgentConfig:
    """A USP twin's agent on the platform's MTPs: MQTT when there is a broker,
    else the controller's WebSocket MTP, with the twin's own credential."""
    from django.conf import settings

    from oktoscripts.sim.usp_fleet import fleet_configs

    config = fleet_configs(
        1, mtp="mqtt" if settings.MQTT_URL else "websocket", username=username, password=password
    )[0]
    config.endpoint_id, config.serial = endpoint_id, endpoint_id.rsplit(":", 1)[-1]
    from oktoscripts.usp import mqtt_topics

    config.agent_topic = mqtt_topics.agent_topic(settings.USP_MQTT_AGENT_TOPIC, endpoint_id)
    return config
