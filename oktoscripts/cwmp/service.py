"""The ACS's NATS side: RPC requests from workers, cancellations.

A request ``{request_id, serial, request, mode, timeout_s, keep}`` on
subjects.cwmp_rpc() (queue group "acs") is queued in MongoDB and acknowledged
with ``{"queued": true}`` (or an error answer for an unknown device). A
synchronous request then wakes the CPE with a Connection Request unless it is
in a session now; if that fails the request is dropped and "503" is
published on subjects.cwmp_answer(request_id), where the requester listens
for the final answer in every case.

A ``keep`` request (made with a call id) that is known already is not queued
again: the reply is its kept answer, or ``{"queued": true}`` while it waits.

Requests are handled concurrently (a NATS subscription runs its callback for
one message at a time: queueing in the callback itself made every request of
every device wait for the database round trips of all those before it), in
arrival order per device (RequestLanes), at most MAX_HANDLING at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from pymongo.errors import AutoReconnect, DuplicateKeyError

from oktoscripts.bus import subjects
from oktoscripts.cwmp import answers
from oktoscripts.cwmp.acs import Acs
from oktoscripts.cwmp.connreq import ConnectionRequestFailed, connection_request
from oktoscripts.cwmp.events import token
from oktoscripts.cwmp.soap import RpcRequest

log = logging.getLogger(__name__)

QUEUE_GROUP = "acs"
MAX_TIMEOUT_S = 7 * 24 * 3600
# Requests being queued at once (each a few database round trips); more wait.
MAX_HANDLING = 256
# A dropped database connection or a failover (AutoReconnect) while queueing
# is tried again after these pauses, then answered "503".
DB_RETRY_PAUSES_S = (0.1, 0.5, 1.5)


class RequestLanes:
    """One lane per device: its requests are queued in the order they arrived
    (two asynchronous requests of a script reach the CPE in the order sent),
    while other devices' requests go ahead meanwhile."""

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Future] = {}

    async def run(self, serial: str, work: Callable[[], Awaitable[object]]) -> object:
        before = self._tails.get(serial)
        mine = asyncio.get_running_loop().create_future()
        self._tails[serial] = mine
        try:
            if before is not None:
                await asyncio.shield(before)
            return await work()
        finally:
            mine.set_result(None)
            if self._tails.get(serial) is mine:
                del self._tails[serial]


class RpcService:
    def __init__(self, acs: Acs) -> None:
        self.acs = acs
        self.nc = acs.nc
        self._subs: list = []
        self._lanes = RequestLanes()
        self._handling = asyncio.Semaphore(MAX_HANDLING)

    async def start(self) -> None:
        self.acs.waker = self._wake_queued
        self._subs.append(
            await self.nc.subscribe(subjects.cwmp_rpc(), QUEUE_GROUP, cb=self._on_request)
        )
        self._subs.append(await self.nc.subscribe(subjects.cwmp_cancel(), cb=self._on_cancel))
        self._subs.append(await self.nc.subscribe(subjects.cwmp_queued("*"), cb=self._on_queued))
        await self.nc.flush()

    async def stop(self) -> None:
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - connection already closed
                pass

    async def _on_request(self, msg: object) -> None:
        """Hand the request to a task of its own, in its device's lane."""
        await self._handling.acquire()
        try:
            serial = str(json.loads(msg.data).get("serial", ""))
        except (ValueError, AttributeError):
            serial = ""
        task = self.acs.spawn(self._lanes.run(serial, lambda: self._handle(msg)))
        task.add_done_callback(lambda _: self._handling.release())

    async def _handle(self, msg: object) -> None:
        try:
            reply = await self._queue_retrying(msg.data)
        except AutoReconnect as exc:
            log.warning("cwmp rpc request not queued, the database is unreachable: %s", exc)
            reply = answers.error("503", f"the ACS cannot reach its database: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bad request must not stop the service
            log.exception("cwmp rpc request")
            reply = answers.error("500", f"the ACS could not queue the request: {exc}")
        if msg.reply:
            await self.nc.publish(msg.reply, json.dumps(reply).encode())

    async def _queue_retrying(self, data: bytes) -> dict:
        """``_queue``, again after a pause when the database connection broke: each
        step is safe to repeat (an insert made before the break is found by its id)."""
        for pause in DB_RETRY_PAUSES_S:
            try:
                return await self._queue(data, again=pause != DB_RETRY_PAUSES_S[0])
            except AutoReconnect as exc:
                log.warning(
                    "cwmp rpc request: database connection lost (%s); again in %.1f s", exc, pause
                )
                await asyncio.sleep(pause)
        return await self._queue(data, again=True)

    async def _queue(self, data: bytes, again: bool = False) -> dict:
        try:
            body = json.loads(data)
            request_id, serial = str(body["request_id"]), str(body["serial"])
            request = RpcRequest.from_json(body["request"])
            mode = "async" if body.get("mode") == "async" else "sync"
            timeout_s = min(float(body.get("timeout_s", 60)), MAX_TIMEOUT_S)
            keep = bool(body.get("keep", False))
        except (ValueError, KeyError, TypeError) as exc:
            return answers.error("500", f"malformed request: {exc}")
        acs = self.acs
        if keep and (known := await acs.queue.known(request_id)) is not None:
            return known  # the same call again: never a second time to the CPE
        # Asked of the database, not the cache: a device deleted a moment ago is unknown.
        if not await acs.backend.exists_now(serial):
            return answers.error("404", f"unknown device {serial!r}")
        wake_now = mode == "sync" and not acs.in_session(serial)
        async with acs.writing(serial) if wake_now else contextlib.nullcontext():
            if wake_now:
                # Wake the CPE while the request is written; its session
                # waits for the write before it looks at the queue.
                acs.spawn(self._wake(serial, [request_id]))
            try:
                item = await acs.queue.put(request_id, serial, request, mode, timeout_s, keep)
            except DuplicateKeyError:
                if again:  # our own insert went through before the connection broke
                    acs.note_queued(serial)
                return {"queued": True}  # (else the same call, made again at the same moment)
            acs.hold(item)
            acs.note_queued(serial)
        if mode == "sync" and not wake_now:
            if acs.in_session(serial):
                acs.rewake.add(serial)  # in case the session ends before taking it
            else:
                acs.spawn(self._wake(serial, [request_id]))  # it ended meanwhile
        # Other ACS processes may hold this CPE's session: tell them.
        await self.nc.publish(
            subjects.cwmp_queued(token(serial)),
            json.dumps({"serial": serial, "owner": acs.owner}).encode(),
        )
        return {"queued": True}

    async def _wake_queued(self, serial: str) -> None:
        """A session ended with synchronous requests still queued: wake it again."""
        request_ids = await self.acs.queue.queued_ids(serial, "sync")
        if request_ids:
            await self._wake(serial, request_ids)

    async def _wake(self, serial: str, request_ids: list[str]) -> None:
        cr = await self.acs.backend.connection_request(serial)
        try:
            if cr is None:
                raise ConnectionRequestFailed("the device never gave a ConnectionRequestURL")
            await connection_request(*cr, ssl_context=self.acs.cr_ssl)
            await self._expect_session(serial, request_ids)
        except ConnectionRequestFailed as exc:
            if self.acs.in_session(serial):
                return  # it called by itself meanwhile: the session takes the requests
            log.info("connection request to %s failed: %s", serial, exc)
            for request_id in request_ids:
                self.acs.forget(request_id, serial)
                if await self.acs.queue.cancel(request_id):
                    await self.acs.publish_answer(
                        request_id,
                        answers.error("503", f"device offline: connection request failed: {exc}"),
                    )

    async def _expect_session(self, serial: str, request_ids: list[str]) -> None:
        """The CPE accepted the Connection Request: it must open a session within
        the session timeout. If none took the requests by then, their callers get
        "408" naming that step now, not when their own (longer) wait ends."""
        wait_s = self.acs.config.session_timeout
        await asyncio.sleep(wait_s)
        if self.acs.in_session(serial):
            return  # it called: the session takes the requests (or times out itself)
        for request_id in request_ids:
            if await self.acs.queue.cancel(request_id):  # still queued: no session took it
                self.acs.forget(request_id, serial)
                log.info("%s accepted a connection request but opened no session", serial)
                await self.acs.publish_answer(
                    request_id,
                    answers.error(
                        "408",
                        f"the device accepted the connection request but opened no session "
                        f"within {wait_s:g} s",
                    ),
                )

    async def _on_queued(self, msg: object) -> None:
        try:
            news = json.loads(msg.data)
        except ValueError:
            return
        if news.get("owner") != self.acs.owner:  # our own requests are noted already
            self.acs.note_queued(str(news.get("serial", "")))

    async def _on_cancel(self, msg: object) -> None:
        try:
            body = json.loads(msg.data)
            request_id, serial = str(body["request_id"]), str(body.get("serial", ""))
        except (ValueError, KeyError, TypeError):
            return
        self.acs.forget(request_id, serial)
        await self.acs.queue.cancel(request_id)
