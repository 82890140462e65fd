"""The clients that bindings use to reach the rest of the platform.

The host of a run (the worker, ``runscript``, a test) builds one Services and
hands it to every run it executes; bindings read it from ``ctx.services``.
Each domain adds the client it needs as a field here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Services:
    nats: Any = None  # nats.aio.client.Client, connected
    mongo: Any = None  # pymongo.database.Database of the platform
    devices: Any = None  # oktoscripts.devices registry
