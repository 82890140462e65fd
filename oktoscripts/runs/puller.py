"""Taking run requests from the JetStream work queue as fast as a worker has room.

nats-py's ``fetch(batch=N)`` waits for N messages or its timeout, which adds
seconds of latency to an idle worker. Instead the puller keeps pull requests
outstanding for exactly the worker's free room ("credit"): the server pushes
each run request to us the moment it is published, and a worker never
receives more than it can hold.

Accounting: the server serves open pull requests in turn and a delivered
message does not say which request it fills, so credit is one counter: each
pull request adds its batch, each delivered message takes one, and when a
request ends unfilled the server's notice (408 expired, 409 refused) says how
many it still owed ("Nats-Pending-Messages"), taken back too. Each request has
its own reply subject, so a notice without that header is charged the whole
batch of its request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

# A pull request lives this long at the server before it expires and is renewed.
PULL_EXPIRES_S = 10.0
# While the consumer has no leader (503: a NATS node lost, an election under
# way), pull requests are refused at once: ask again after this pause.
UNAVAILABLE_PAUSE_S = 0.5


class RequestPuller:
    """Calls ``on_request(msg)`` for each run request, never asking for more
    than ``room()``. Call ``top_up()`` whenever room grows."""

    def __init__(
        self,
        nc: Client,
        stream: str,
        consumer: str,
        on_request: Callable[[Msg], None],
        room: Callable[[], int],
    ) -> None:
        self._nc = nc
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._on_request = on_request
        self._room = room
        self._inbox = nc.new_inbox()
        self._numbers = itertools.count(1)
        self.credit = 0  # messages asked for and not yet delivered or taken back
        self._batches: dict[str, tuple[int, float]] = {}  # open request -> (batch, sent at)
        self._sub: Subscription | None = None
        self._topping_up = False
        self._last_news = time.monotonic()
        self._watchdog: asyncio.Task | None = None
        self._pulling: asyncio.Task | None = None  # held: the loop keeps only weak references
        self._unavailable = False

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(
            f"{self._inbox}.*", cb=self._on_message, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        self.top_up()

    async def stop(self) -> None:
        if self._watchdog:
            self._watchdog.cancel()
        if self._sub:
            await self._sub.unsubscribe()
            self._sub = None
        self._forget_all()

    def top_up(self) -> None:
        """Ask for as many requests as there is room, soon (coalesced)."""
        if not self._topping_up and self._sub is not None:
            self._topping_up = True
            self._pulling = asyncio.get_running_loop().create_task(self._pull())

    async def _pull(self) -> None:
        self._topping_up = False
        want = self._room() - self.credit
        if want <= 0 or self._sub is None:
            return
        token = str(next(self._numbers))
        self._batches[token] = (want, time.monotonic())
        self.credit += want
        request = {"batch": want, "expires": int(PULL_EXPIRES_S * 1e9)}
        try:
            await self._nc.publish(
                self._next_subject, json.dumps(request).encode(), reply=f"{self._inbox}.{token}"
            )
        except Exception as exc:  # noqa: BLE001 - disconnected: the watchdog retries
            log.warning("could not ask for run requests: %s", exc)
            self._batches.pop(token, None)
            self.credit -= want

    async def _on_message(self, msg: Msg) -> None:
        self._last_news = time.monotonic()
        status = msg.headers.get("Status") if msg.headers else None
        if status is None and msg.reply:
            self.credit = max(0, self.credit - 1)
            self._unavailable = False
            self._on_request(msg)
            return
        if status == "100":  # idle heartbeat
            return
        # 408: the request expired; 409: refused (too many waiting, consumer
        # deleted); 404: nothing there; 503: no consumer leader. Status notices
        # come on the request's own reply subject.
        batch, _ = self._batches.pop(msg.subject.rsplit(".", 1)[-1], (0, 0.0))
        owed = msg.headers.get("Nats-Pending-Messages")
        self.credit = max(0, self.credit - (int(owed) if owed is not None else batch))
        if status == "503":
            self._pause_pulling()
            return
        self._unavailable = False
        if status not in ("404", "408"):
            log.warning("run queue: %s %s", status, msg.headers.get("Description", ""))
        self.top_up()

    def _pause_pulling(self) -> None:
        """Ask again a little later: asking at once is refused at once, a busy
        loop for as long as the election lasts."""
        if not self._unavailable:
            self._unavailable = True
            log.warning(
                "run queue unavailable (no consumer leader): asking every %gs", UNAVAILABLE_PAUSE_S
            )
        if not self._topping_up and self._sub is not None:
            self._topping_up = True
            self._pulling = asyncio.get_running_loop().create_task(self._pull_after_pause())

    async def _pull_after_pause(self) -> None:
        await asyncio.sleep(UNAVAILABLE_PAUSE_S)
        await self._pull()

    def _forget_all(self) -> None:
        self._batches.clear()
        self.credit = 0

    async def _watch(self) -> None:
        """Renew credit that a lost connection or a missed notice left hanging,
        and forget requests long filled (the server sends nothing for those)."""
        reconnects = self._nc.stats["reconnects"]
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            if self._nc.stats["reconnects"] != reconnects:
                # The server forgot our pull requests with the old connection.
                reconnects = self._nc.stats["reconnects"]
                log.info("run queue: reconnected, renewing pull requests")
                self._forget_all()
                self._last_news = now
            elif now - self._last_news > PULL_EXPIRES_S + 5 and self.credit:
                log.info("run queue: no news for a while, renewing pull requests")
                self._forget_all()
                self._last_news = now
            for token, (_, sent) in list(self._batches.items()):
                if now - sent > 2 * PULL_EXPIRES_S:
                    del self._batches[token]
            self.top_up()
