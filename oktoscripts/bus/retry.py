"""JetStream calls that ride out a moment without a stream leader.

On a NATS cluster a stream is briefly unreachable while its replicas elect a
leader: just after it was created (its subjects are not yet known on every
server), and when the server that led it went away. JetStream then answers
"no responders", 503 or nothing at all (a timeout), for a few seconds at most.
``retrying`` tries such a call again until it goes through or ``within_s``
passes; it is for calls that are safe to repeat (a publish with a
``Nats-Msg-Id``, which the stream stores once, or a key-value put).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Longer than a JetStream leader election takes (a few seconds).
WITHIN_S = 15.0
PAUSE_S = 0.25
TRANSIENT = (
    NoStreamResponseError,
    ServiceUnavailableError,
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
)


async def retrying(call: Callable[[], Awaitable[T]], within_s: float = WITHIN_S) -> T:
    """``await call()``, again after a short pause while it fails with a
    transient JetStream error; the last error once ``within_s`` passed."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await call()
        except TRANSIENT as exc:
            if time.monotonic() + PAUSE_S >= deadline:
                raise
            log.info("JetStream busy (%s): trying again", type(exc).__name__)
            await asyncio.sleep(PAUSE_S)
