"""Putting the ACS together: NATS, MongoDB, the device registry, the HTTP
server and the RPC service. Used by ``manage.py acs``, tests and benchmarks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pymongo import AsyncMongoClient, MongoClient

from oktoscripts.bus.connection import connect
from oktoscripts.cwmp.acs import Acs
from oktoscripts.cwmp.backend import DeviceBackend
from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.cwmp.queue import RpcQueue
from oktoscripts.cwmp.service import RpcService
from oktoscripts.devices.client import new_client
from oktoscripts.devices.credentials import CredentialStore
from oktoscripts.devices.events import LoopAnnouncer
from oktoscripts.devices.maintenance import maintain
from oktoscripts.devices.registry import DeviceRegistry

log = logging.getLogger(__name__)


STOP_TIMEOUT_S = 3.0


@dataclass
class AcsApp:
    acs: Acs
    service: RpcService
    nc: object
    mongo: MongoClient
    amongo: AsyncMongoClient
    upkeep: asyncio.Task

    @property
    def port(self) -> int | None:
        """The plain HTTP port listened on (None: none)."""
        return self.acs.port

    @property
    def tls_port(self) -> int | None:
        """The HTTPS port listened on (None: none)."""
        return self.acs.tls_port

    async def stop(self) -> None:
        """Stop within a few seconds even when NATS or MongoDB is gone."""
        self.upkeep.cancel()  # records the new-device events acknowledged so far
        await asyncio.gather(self.upkeep, return_exceptions=True)
        for step in (self.service.stop(), self.acs.stop()):
            try:
                await asyncio.wait_for(step, STOP_TIMEOUT_S)
            except (TimeoutError, Exception) as exc:  # noqa: BLE001 - keep stopping
                log.warning("ACS stop: %s", exc or type(exc).__name__)
        self.acs.backend.close()
        try:
            await asyncio.wait_for(self.nc.drain(), STOP_TIMEOUT_S)
        except (TimeoutError, Exception):  # noqa: BLE001 - NATS unreachable: just close
            await self.nc.close()
        await self.amongo.close()
        self.mongo.close()


async def start_acs(config: AcsConfig, *, nats_url: str, mongo_uri: str, db_name: str) -> AcsApp:
    nc = await connect("oktoscripts-acs", nats_url)
    mongo = new_client(mongo_uri)
    amongo = new_client(mongo_uri, asynchronous=True)
    registry = DeviceRegistry(mongo[db_name], announcer=LoopAnnouncer(nc))
    credentials = CredentialStore(mongo[db_name])
    registry.ensure_indexes()
    credentials.ensure_indexes()
    acs = Acs(config, DeviceBackend(registry, credentials), RpcQueue(amongo[db_name]), nc)
    await acs.start()
    service = RpcService(acs)
    await service.start()
    # Devices go offline when their Informs stop; lost new-device events are re-sent.
    upkeep = asyncio.ensure_future(maintain(registry))
    return AcsApp(acs, service, nc, mongo, amongo, upkeep)
