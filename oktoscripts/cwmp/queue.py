"""The per-device RPC queue in MongoDB (collection ``cwmp_queue``).

A script's request waits here until a session of its CPE takes it; requests of
one device go out in the order they were queued. A request stays in MongoDB
until it is answered, cancelled by its requester, or past its deadline, so an
asynchronous request survives a restart of the ACS. ``status`` is "queued"
until a session sends it, then "sent" (with the session's owner) until the
answer is published; a Download or Upload the CPE carries out later is
"transfer" until its TransferComplete (or its deadline) comes.

A request made with a call id (``keep``: a run that may be run again, see
client.py) stays ANSWER_KEEP_S longer, "answered", with its answer: the same
call made again gets that answer and never reaches the CPE twice.

The device registry owns the lifecycle of a device's requests: deleting the
device deletes them (DeviceRegistry.delete), so the collection's name is
declared there.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING

from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.devices.registry import CWMP_QUEUE_COLLECTION as COLLECTION

# How long the answer of a request made with a call id is kept: longer than a
# run's default wall-clock limit, plus the time to notice its worker died.
ANSWER_KEEP_S = 15 * 60.0
# Requests of one device others took between our look and our claim: tried next.
CLAIM_ATTEMPTS = 5
_counter = itertools.count()


@dataclass
class QueuedRpc:
    request_id: str
    serial: str
    request: RpcRequest
    mode: str  # "sync" | "async"
    expires_at: datetime
    order: str = ""  # the queue's sort key: time of queueing, then a counter
    keep: bool = False  # made with a call id: its answer is kept (answered())

    @classmethod
    def from_doc(cls, doc: dict) -> QueuedRpc:
        expires = doc["expires_at"]
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return cls(
            doc["_id"],
            doc["serial"],
            RpcRequest.from_json(doc["request"]),
            doc.get("mode", "sync"),
            expires,
            doc.get("order", ""),
            doc.get("keep", False),
        )


class RpcQueue:
    def __init__(self, db: object) -> None:
        self.col = db[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self.col.create_index(
            [("serial", ASCENDING), ("status", ASCENDING), ("order", ASCENDING)]
        )
        await self.col.create_index([("expires_at", ASCENDING)])
        # The sweeper's look for requests sent long ago (stale_sent), every second:
        # without it, a scan of every request kept with its answer.
        await self.col.create_index([("status", ASCENDING), ("sent_at", ASCENDING)])

    async def put(
        self,
        request_id: str,
        serial: str,
        request: RpcRequest,
        mode: str,
        timeout_s: float,
        keep: bool = False,
    ) -> QueuedRpc:
        """Queue a request (DuplicateKeyError: one with this id is queued already)."""
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=timeout_s)
        order = f"{time.time():017.6f}-{next(_counter):012d}"
        await self.col.insert_one(
            {
                "_id": request_id,
                "serial": serial,
                "request": request.to_json(),
                "mode": mode,
                "status": "queued",
                "queued_at": now,
                # time first, then a process counter: order of arrival within one ACS
                "order": order,
                "expires_at": expires_at,
                "keep": keep,
            }
        )
        return QueuedRpc(request_id, serial, request, mode, expires_at, order, keep)

    async def known(self, request_id: str) -> dict | None:
        """A request made again: {"queued": True} while it waits or is being
        answered, its answer once answered, None when there is no such request."""
        doc = await self.col.find_one({"_id": request_id}, {"status": 1, "answer": 1})
        if doc is None:
            return None
        if doc.get("status") == "answered":
            return json.loads(doc["answer"])
        return {"queued": True}

    async def take_next(self, serial: str, owner: str) -> QueuedRpc | None:
        """The oldest live queued request of ``serial``, marked sent by ``owner``."""
        doc = await self._claim(
            {"serial": serial, "status": "queued", "expires_at": {"$gt": datetime.now(UTC)}},
            {"status": "sent", "owner": owner, "sent_at": datetime.now(UTC)},
        )
        return QueuedRpc.from_doc(doc) if doc else None

    async def _claim(self, query: dict, changes: dict) -> dict | None:
        """The oldest request matching ``query`` (its status among them), changed
        by ``changes`` if nobody took it first (then the next oldest is tried).
        A find and a conditional update rather than one findAndModify: that
        costs MongoDB-wire servers such as SecantusDB a scan of the collection
        (8 ms a call with 1,000 requests queued, measured), which grows with the
        answers kept; this costs two index lookups."""
        for _ in range(CLAIM_ATTEMPTS):
            doc = await self.col.find_one(query, sort=[("order", ASCENDING)])
            if doc is None:
                return None
            taken = await self.col.update_one(
                {"_id": doc["_id"], "status": query["status"]}, {"$set": changes}
            )
            if taken.modified_count:
                return {**doc, **changes}
        return None

    async def queued_serials(self) -> list[str]:
        """The serial of every queued request (repeated once per request)."""
        docs = await self.col.find({"status": "queued"}, {"serial": 1, "_id": 0}).to_list(None)
        return [d["serial"] for d in docs]

    async def count_queued(self, serial: str) -> int:
        """Live requests of ``serial`` waiting to be sent."""
        return await self.col.count_documents(
            {"serial": serial, "status": "queued", "expires_at": {"$gt": datetime.now(UTC)}}
        )

    async def mark_sent(self, request_id: str, owner: str) -> None:
        """What take_next records, for a request the ACS already holds in memory."""
        await self.col.update_one(
            {"_id": request_id, "status": "queued"},
            {"$set": {"status": "sent", "owner": owner, "sent_at": datetime.now(UTC)}},
        )

    async def queued_ids(self, serial: str, mode: str) -> list[str]:
        docs = await self.col.find(
            {"serial": serial, "status": "queued", "mode": mode}, {"_id": 1}
        ).to_list(None)
        return [d["_id"] for d in docs]

    async def done(self, request_id: str) -> None:
        await self.col.delete_one({"_id": request_id})

    async def answered(self, request_id: str, answer: dict) -> None:
        """Keep the answer of a request made with a call id (see known()). As
        JSON text: parameter paths, with their dots, are keys of some answers."""
        until = datetime.now(UTC) + timedelta(seconds=ANSWER_KEEP_S)
        await self.col.update_one(
            {"_id": request_id},
            {"$set": {"status": "answered", "answer": json.dumps(answer), "expires_at": until}},
        )

    async def await_transfer(self, request_id: str, command_key: str) -> None:
        """A Download or Upload the CPE will carry out later: the request waits
        (until its deadline) for the TransferComplete with this command key."""
        await self.col.update_one(
            {"_id": request_id},
            {"$set": {"status": "transfer", "command_key": command_key}},
        )

    async def take_transfer(self, serial: str, command_key: str) -> QueuedRpc | None:
        """The oldest request of ``serial`` waiting for the TransferComplete of
        ``command_key``, taken (None if there is none: a transfer no script waits on)."""
        doc = await self._claim(
            {"serial": serial, "status": "transfer", "command_key": command_key},
            {"status": "sent", "sent_at": datetime.now(UTC)},
        )
        return QueuedRpc.from_doc(doc) if doc else None

    async def cancel(self, request_id: str) -> bool:
        """Drop a request that no session has taken yet."""
        result = await self.col.delete_one({"_id": request_id, "status": "queued"})
        return result.deleted_count == 1

    async def expired(self) -> list[QueuedRpc]:
        """Requests past their deadline, removed from the queue (kept answers
        past theirs go too, silently)."""
        now = datetime.now(UTC)
        docs = await self.col.find({"expires_at": {"$lte": now}}).to_list(None)
        if docs:
            await self.col.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
        return [QueuedRpc.from_doc(d) for d in docs if d.get("status") != "answered"]

    async def stale_sent(self, older_than_s: float) -> list[QueuedRpc]:
        """Requests sent longer ago than a session may last: the session that
        sent them died (an ACS restart, a CPE that hung up) without an answer."""
        limit = datetime.now(UTC) - timedelta(seconds=older_than_s)
        docs = await self.col.find({"status": "sent", "sent_at": {"$lt": limit}}).to_list(None)
        return [QueuedRpc.from_doc(d) for d in docs]

    async def requeue(self, request_id: str) -> None:
        await self.col.update_one(
            {"_id": request_id}, {"$set": {"status": "queued"}, "$unset": {"owner": ""}}
        )
