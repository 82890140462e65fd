"""Writing device upserts: one unordered bulk write per batch.

An upsert is a MongoDB update with ``upsert=True`` of dotted fields
(``$set``) plus what only an insert sets (``$setOnInsert``). A device whose
identity facts this process wrote lately gets an update without them and
without ``upsert`` (identity.py); the batch reply tells how many of those
matched, and when one matched nothing (the device was deleted meanwhile) they
are all written again in full, which inserts the deleted one as a new device.

Two processes inserting the same new serial at once give one insert and one
duplicate-key error (the serial is the ``_id``): the loser writes again,
which is then an update of the winner's document. Any other error the
database reports for one statement fails that upsert only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError
from pymongo.results import UpdateResult

from oktoscripts.devices.identity import WrittenIdentities

DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class Write:
    """One upsert on its way: the device, the protocol, the MongoDB update
    document, its time, and the identity facts among its fields."""

    serial: str
    protocol: str
    doc: dict[str, Any]
    now: datetime
    facts: dict[str, Any]

    def full(self) -> UpdateOne:
        return UpdateOne({"_id": self.serial}, self.doc, upsert=True)

    def without_facts(self) -> UpdateOne:
        """The update of a device known to hold ``facts``: the other fields."""
        fields = {k: v for k, v in self.doc["$set"].items() if k not in self.facts}
        return UpdateOne({"_id": self.serial}, {"$set": fields})


@dataclass
class Outcome:
    inserted: bool = False
    error: WriteError | None = None  # the database refused this upsert


@dataclass
class _Reply:
    inserted: set[int] = field(default_factory=set)
    lost_race: list[int] = field(default_factory=list)  # duplicate _id: write again
    refused: dict[int, WriteError] = field(default_factory=dict)
    matched: int = 0


class DeviceWriter:
    def __init__(self, collection: Collection, identities: WrittenIdentities) -> None:
        self.collection = collection
        self.identities = identities

    def write(self, writes: list[Write]) -> list[Outcome]:
        """Write a batch; one outcome per write, in order."""
        if not writes:
            return []
        partial = [
            bool(w.facts) and self.identities.written(w.serial, w.protocol, w.facts) for w in writes
        ]
        ops = [w.without_facts() if p else w.full() for w, p in zip(writes, partial, strict=True)]
        reply = self._bulk(ops)
        again = reply.lost_race + self._unmatched(partial, reply)
        refused = dict(reply.refused)
        inserted = set(reply.inserted)
        if again:
            second = self._write_full([writes[i] for i in again])
            inserted |= {again[k] for k in second.inserted}
            refused |= {again[k]: error for k, error in second.refused.items()}
        written_in_full = set(again) | {i for i, p in enumerate(partial) if not p}
        for index, write in enumerate(writes):
            if index in written_in_full and index not in refused:
                self.identities.remember(write.serial, write.protocol, write.facts)
        return [Outcome(i in inserted, refused.get(i)) for i in range(len(writes))]

    @staticmethod
    def _unmatched(partial: list[bool], reply: _Reply) -> list[int]:
        """The partial updates to write again in full: all of them when one
        matched nothing (an unordered reply does not say which one)."""
        full = [i for i, p in enumerate(partial) if not p]
        # A full upsert inserts, matches, lost a race or was refused.
        full_matched = sum(
            1
            for i in full
            if i not in reply.inserted and i not in reply.refused and i not in reply.lost_race
        )
        todo = [i for i, p in enumerate(partial) if p and i not in reply.refused]
        return todo if reply.matched - full_matched < len(todo) else []

    def _bulk(self, ops: list[UpdateOne]) -> _Reply:
        try:
            # Unordered: one device's error does not hold back the others.
            details = self.collection.bulk_write(ops, ordered=False).bulk_api_result
        except BulkWriteError as exc:
            details = exc.details or {}
        reply = _Reply(
            inserted={u["index"] for u in details.get("upserted", [])},
            matched=details.get("nMatched", 0),
        )
        for error in details.get("writeErrors", []):
            if error.get("code") == DUPLICATE_KEY:  # only an insert can collide
                reply.lost_race.append(error["index"])
            else:
                reply.refused[error["index"]] = WriteError(
                    error.get("errmsg", ""), error.get("code"), error
                )
        return reply

    def _write_full(self, writes: list[Write]) -> _Reply:
        reply = self._bulk([w.full() for w in writes])
        for k in reply.lost_race:  # the other process's insert is there now: an update
            if self.upsert_one(writes[k].serial, writes[k].doc).upserted_id is not None:
                reply.inserted.add(k)
        reply.lost_race = []
        return reply

    def upsert_one(self, serial: str, doc: dict) -> UpdateResult:
        """One upsert, retried when it lost an insert race."""
        for _ in range(3):
            try:
                return self.collection.update_one({"_id": serial}, doc, upsert=True)
            except DuplicateKeyError:
                continue
        return self.collection.update_one({"_id": serial}, doc, upsert=True)
