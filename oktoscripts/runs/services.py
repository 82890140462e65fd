"""The Services a host of runs (worker, runscript) hands to every run."""

from __future__ import annotations

from django.conf import settings
from nats.aio.client import Client

from oktoscripts.bindings.services import Services


def build_services(nc: Client | None) -> Services:
    """Services over this NATS client and, when MONGO_URI is set, the platform's MongoDB
    database (pymongo connects lazily, so an unreachable MongoDB only fails the
    bindings that use it)."""
    mongo = devices = None
    uri = getattr(settings, "MONGO_URI", "")
    if uri:
        from oktoscripts.devices.client import new_client
        from oktoscripts.devices.registry import DeviceRegistry

        client = new_client(uri, connect=False)
        mongo = client[settings.MONGO_DB_NAME]
        # One registry for every run of this host: the device functions of
        # scripts then share it instead of building one per call.
        devices = DeviceRegistry(mongo)
    return Services(nats=nc, mongo=mongo, devices=devices)


def close_services(services: Services) -> None:
    if services.mongo is not None:
        services.mongo.client.close()
