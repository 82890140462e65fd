"""The device registry: every device the platform knows, in MongoDB.

Used by the ACS, the USP controller, the Lua bindings and the IDE. All
methods are synchronous pymongo calls: asyncio code runs them in a thread
(``asyncio.to_thread``), the Lua bindings call them from the Lua thread.

Writes are upserts of dotted fields: a protocol sets only what it knows
(``cwmp.*`` or ``usp.*`` and the shared fields it reports) and never removes
what the other protocol wrote. ``first_seen`` is set on insert only. An
insert, and only an insert, announces a new-device event (see events.py).

An upsert returns once MongoDB acknowledged it: a read right after it, from
any process, sees it. How they are written, for the embedded server's sake
(each statement there costs about a millisecond of its CPU): one unordered
bulk write per batch (writes.py), threads calling ``upsert`` at the same
moment share one (batching.py), and the identity facts of a device that this
process wrote lately are not written again (identity.py).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import UpdateMany
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure, PyMongoError

from oktoscripts.devices import identifiers, identity, listing, online, sealing
from oktoscripts.devices.batching import GroupCommit
from oktoscripts.devices.documents import (
    ASSOCIATING,
    OFFLINE,
    ONLINE,
    PROTOCOLS,
    SHARED_FIELDS,
    STATUSES,
    iso,
    lua_table,
)
from oktoscripts.devices.events import Announcer
from oktoscripts.devices.writes import DeviceWriter, Write

log = logging.getLogger(__name__)

COLLECTION = "devices"
# The CWMP queue's requests (one document each, field "serial") belong to their
# device: the device's lifecycle has one owner, this registry, and deleting a
# device deletes them. The queue (oktoscripts/cwmp/queue.py) takes the name
# from here: cwmp builds on devices, never the reverse.
CWMP_QUEUE_COLLECTION = "cwmp_queue"
PER_DEVICE_COLLECTIONS = (CWMP_QUEUE_COLLECTION,)
CR_PASSWORD_PURPOSE = b"cwmp connection request password"
MAX_PAGE = 1000
# An insert whose event is still pending after this long is announced again
# by announce_pending() (its own announcer had time to do it).
ANNOUNCE_RETRY_AFTER_S = 30.0
# How long acknowledged new-device events wait to have their flags cleared together.
ACK_FLUSH_DELAY_S = 0.2
FLAG_CHUNK = 100  # devices per statement clearing announced flags
LIVE_STATUSES = (ASSOCIATING, ONLINE)
# Indexes of earlier versions that status_offline_at replaces.
SUPERSEDED_INDEXES = {"status", "offline_at"}
# Most single upserts written together when threads call at the same moment.
GROUP_MAX = 500


def _now() -> datetime:
    # BSON dates hold milliseconds: round now so what we write is what we read.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass
class DeviceUpdate:
    """One protocol's news about one device.

    ``shared``: top-level fields it reports (SHARED_FIELDS; None or "" are
    left alone). ``fields``: its own fields, stored under ``<protocol>.``.
    ``state``: the protocol's view of the device (None leaves it as it is);
    ``silence_s``: how long that view holds without news (None: until the
    protocol says otherwise, e.g. while a USP MTP connection is up)."""

    serial: str
    protocol: str
    shared: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    state: int | None = ONLINE
    silence_s: float | None = None


@dataclass(frozen=True)
class UpsertResult:
    serial: str
    inserted: bool


@dataclass(frozen=True)
class ConnectionRequest:
    """Where and how the ACS wakes a CPE. ``password`` is None when the CPE
    reported none or it was sealed under another SECRET_KEY."""

    url: str
    username: str
    password: str | None


@dataclass(frozen=True)
class DeviceFilter:
    """Filters of a device listing; None or "" means "any"."""

    status: int | None = None
    vendor: str | None = None
    product_class: str | None = None
    protocol: str | None = None  # "cwmp" | "usp"
    text: str | None = None  # case-insensitive substring of serial or alias
    twins: bool | None = None  # device twins: None with the others, False none, True only

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.twins is not None:
            query["twin"] = {"$exists": self.twins}
        if self.status is not None:
            query["status"] = self.status
        if self.vendor:
            query["vendor"] = self.vendor
        if self.product_class:
            query["product_class"] = self.product_class
        if self.protocol:
            if self.protocol not in PROTOCOLS:
                raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
            query[self.protocol] = {"$exists": True}
        if self.text:
            pattern = {"$regex": re.escape(self.text), "$options": "i"}
            query["$or"] = [{"serial": pattern}, {"alias": pattern}]
        return query


def _check_serial(serial: object) -> str:
    if not isinstance(serial, str) or not serial:
        raise ValueError("a device serial must be a non-empty string")
    return serial


def _check_protocol(protocol: object) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    return protocol


def _clear_flags(acked: list[dict]) -> list[UpdateMany]:
    """The writes that clear the pending flags of announced inserts.

    Each flag is cleared only on the insert that was announced (same
    ``first_seen``), never on a later one of a device deleted and seen again.
    The devices of one bulk insert share their ``first_seen``: one statement
    per insert time clears them together, which on the embedded server costs
    less than one statement per device filtering on two fields (its planner
    fast path is a lone ``_id``). Chunks stay small because each document is
    matched against the whole ``$in`` list."""
    by_time: dict[datetime, list[str]] = {}
    for insert in acked:
        by_time.setdefault(insert["first_seen"], []).append(insert["_id"])
    unset = {"$unset": {"announce_pending": ""}}
    return [
        UpdateMany({"_id": {"$in": ids[k : k + FLAG_CHUNK]}, "first_seen": first_seen}, unset)
        for first_seen, ids in by_time.items()
        for k in range(0, len(ids), FLAG_CHUNK)
    ]


def _expand(dotted: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}: the document an upsert inserted."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


class DeviceRegistry:
    """The devices collection of one MongoDB database.

    ``announcer`` publishes new-device events (events.LoopAnnouncer in an
    asyncio process, events.BlockingAnnouncer in a synchronous one); a
    registry without one still marks inserts as pending, and a process with
    an announcer publishes them later."""

    def __init__(
        self,
        db: Database,
        *,
        announcer: Announcer | None = None,
        collection: str = COLLECTION,
        identity_refresh_s: float = identity.REFRESH_S,
    ) -> None:
        self.db = db
        self.collection: Collection = db[collection]
        self.announcer = announcer
        self._acked: list[dict] = []
        self._acked_lock = threading.Lock()
        self._acked_timer: threading.Timer | None = None
        self._identities = identity.WrittenIdentities(identity_refresh_s)
        self._writer = DeviceWriter(self.collection, self._identities)
        self._group: GroupCommit[Write, UpsertResult] = GroupCommit(self._write, GROUP_MAX)

    # -- schema -----------------------------------------------------------

    def ensure_indexes(self) -> None:
        """Create the indexes (idempotent; every process calls it on start).

        Every index costs each device write, and on the embedded server a
        fixed cost per index whichever fields the write changes (it rereads
        the index definitions and rewrites every entry of the document): one
        compound index serves both the status lookups and the sweeper."""
        col = self.collection
        # The serial is the document's _id: unique, and the fastest lookup.
        col.create_index([("status", 1), ("offline_at", 1)], name="status_offline_at")
        col.create_index("vendor", name="vendor")
        col.create_index("product_class", name="product_class")
        col.create_index("last_seen", name="last_seen")
        col.create_index("announce_pending", name="announce_pending", sparse=True)
        existing = {index["name"] for index in col.list_indexes()}
        for name in SUPERSEDED_INDEXES & existing:
            try:
                col.drop_index(name)
            except OperationFailure as exc:  # another process dropped it first
                log.info("index %s of devices not dropped: %s", name, exc)

    # -- writes by the protocols --------------------------------------------

    def upsert(self, update: DeviceUpdate, now: datetime | None = None) -> UpsertResult:
        """Record one protocol's news about a device, inserting it if new.
        Returns once the database has it; threads calling at the same moment
        share one round trip (see batching.py)."""
        return self._group.submit(self._prepare(update, now or _now()))

    def bulk_upsert(
        self, updates: Iterable[DeviceUpdate], now: datetime | None = None
    ) -> list[UpsertResult]:
        """Many upserts in one round trip (a burst of Informs, a fleet import).
        Results are in the order of ``updates``. If the database refused some,
        the others are written all the same and the first refusal is raised."""
        now = now or _now()
        results = self._write([self._prepare(u, now) for u in updates])
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def _write(self, writes: list[Write]) -> list[UpsertResult | Exception]:
        outcomes = self._writer.write(writes)
        for write, outcome in zip(writes, outcomes, strict=True):
            if outcome.inserted:
                self._announce(write.doc, write.protocol)
        for write, outcome in zip(writes, outcomes, strict=True):
            # A protocol that lost the device: the status comes from both views.
            if write.doc["$set"].get(f"{write.protocol}.state") == OFFLINE and not outcome.error:
                self._recompute(write.serial, write.now)
        return [
            outcome.error or UpsertResult(write.serial, outcome.inserted)
            for write, outcome in zip(writes, outcomes, strict=True)
        ]

    def upsert_cwmp(
        self, serial: str, *, now: datetime | None = None, **inform: Any
    ) -> UpsertResult:
        """What an Inform says about a CPE (keywords of ``cwmp_update``). The
        device is online for a multiple of its periodic inform interval."""
        return self.upsert(self.cwmp_update(serial, now=now, **inform), now)

    def cwmp_update(
        self,
        serial: str,
        *,
        oui: str | None = None,
        product_class: str | None = None,
        manufacturer: str | None = None,
        model: str | None = None,
        software_version: str | None = None,
        hardware_version: str | None = None,
        data_model: str | None = None,
        ip: str | None = None,
        periodic_inform_interval: int | None = None,
        connection_request_url: str | None = None,
        connection_request_username: str | None = None,
        connection_request_password: str | None = None,
        events: list[str] | None = None,
        state: int | None = ONLINE,
        now: datetime | None = None,
    ) -> DeviceUpdate:
        """The DeviceUpdate of an Inform, for ``upsert`` or ``bulk_upsert``."""
        # The CWMP DeviceId (OUI, ProductClass, SerialNumber) is kept as the CPE
        # gave it; what it shares with USP (vendor, versions...) is top level only.
        fields: dict[str, Any] = {
            "serial_number": serial,
            "oui": oui,
            "product_class": product_class,
            "periodic_inform_interval": periodic_inform_interval,
            "last_inform": now or _now(),
            "last_events": events,
            "connection_request.url": connection_request_url,
            "connection_request.username": connection_request_username,
        }
        if connection_request_password is not None:
            fields["connection_request.password"] = sealing.seal(
                connection_request_password, CR_PASSWORD_PURPOSE
            )
        return DeviceUpdate(
            serial=serial,
            protocol="cwmp",
            shared={
                "vendor": manufacturer,
                "model": model,
                "version": software_version,
                "hw_version": hardware_version,
                "product_class": product_class,
                "oui": oui,
                "data_model": data_model,
                "ip": ip,
            },
            fields=fields,
            state=state,
            silence_s=online.cwmp_silence_s(periodic_inform_interval),
        )

    def upsert_usp(
        self,
        endpoint_id: str,
        *,
        vendor: str | None = None,
        model: str | None = None,
        version: str | None = None,
        hw_version: str | None = None,
        product_class: str | None = None,
        oui: str | None = None,
        data_model: str | None = "TR-181",
        ip: str | None = None,
        mtp: str | None = None,
        mtp_address: dict[str, Any] | None = None,
        state: int | None = ONLINE,
        lease_s: float | None = None,
        owner: str | None = None,
        now: datetime | None = None,
    ) -> UpsertResult:
        """What the USP controller learnt about an agent (Boot!, onboarding,
        an MTP connection). Online while the MTP is connected (``lease_s``
        None) or for ``lease_s`` seconds (an MQTT agent seen through a broker);
        ``owner`` names the controller holding the connection, so that a
        restarted controller can release its devices (``release_owner``)."""
        now = now or _now()
        fields: dict[str, Any] = {"endpoint_id": endpoint_id, "owner": owner}
        if mtp:
            fields[f"mtps.{mtp}"] = {
                "state": "connected",
                "address": mtp_address or {},
                "since": now,
            }
        update = DeviceUpdate(
            serial=endpoint_id,
            protocol="usp",
            shared={
                "vendor": vendor,
                "model": model,
                "version": version,
                "hw_version": hw_version,
                "product_class": product_class,
                "oui": oui,
                "data_model": data_model,
                "ip": ip,
            },
            fields=fields,
            state=state,
            silence_s=lease_s,
        )
        return self.upsert(update, now)

    def set_offline(
        self,
        serial: str,
        protocol: str,
        *,
        mtp: str | None = None,
        mtp_state: str = "disconnected",
        now: datetime | None = None,
    ) -> bool:
        """A protocol lost the device (a USP MTP disconnected; ``mtp_state``
        "silent": an MQTT agent whose lease ran out, its topic still worth a
        try). The device stays online if the other protocol still sees it.
        False if the device is unknown or not managed over that protocol."""
        _check_protocol(protocol)
        now = now or _now()
        fields: dict[str, Any] = {f"{protocol}.state": OFFLINE, f"{protocol}.offline_at": None}
        if mtp:
            fields[f"{protocol}.mtps.{mtp}.state"] = mtp_state
            fields[f"{protocol}.mtps.{mtp}.since"] = now
        result = self.collection.update_one(
            {"_id": serial, protocol: {"$exists": True}}, {"$set": fields}
        )
        if result.matched_count == 0:
            return False
        self._recompute(serial, now)
        return True

    def usp_mqtt_routes(self, owner: str) -> list[tuple[str, str]]:
        """(endpoint id, topic) of the USP agents ``owner`` reached over MQTT and
        did not see leave: what a restarted controller probes."""
        query = {
            "usp.owner": owner,
            "usp.mtps.mqtt.state": {"$in": ["connected", "silent"]},
        }
        routes = []
        for doc in self.collection.find(query, {"_id": 1, "usp.mtps.mqtt": 1}):
            topic = (
                (((doc.get("usp") or {}).get("mtps") or {}).get("mqtt") or {})
                .get("address", {})
                .get("topic")
            )
            if topic:
                routes.append((doc["_id"], topic))
        return routes

    def release_owner(self, protocol: str, owner: str, now: datetime | None = None) -> int:
        """A controller restarted: the connections it held are gone. Marks its
        devices offline for that protocol; returns how many."""
        _check_protocol(protocol)
        now = now or _now()
        query = {f"{protocol}.owner": owner, f"{protocol}.state": {"$gt": OFFLINE}}
        serials = [d["_id"] for d in self.collection.find(query, {"_id": 1})]
        for serial in serials:
            self.set_offline(serial, protocol, now=now)
        return len(serials)

    def sweep_offline(self, now: datetime | None = None) -> int:
        """Take offline every device whose protocols' views have expired.
        Call it periodically from the protocol processes and once on their
        start (a platform restart must not leave gone devices online).
        Returns how many devices changed status."""
        now = now or _now()
        changed = 0
        for live in LIVE_STATUSES:  # equality then range: the compound index serves it
            overdue = self.collection.find(
                {"status": live, "offline_at": {"$lte": now}},
                {
                    "serial": 1,
                    "status": 1,
                    "offline_at": 1,
                    "cwmp.state": 1,
                    "cwmp.offline_at": 1,
                    "usp.state": 1,
                    "usp.offline_at": 1,
                },
            )
            for doc in list(overdue):
                status, offline_at = online.effective(doc, now)
                # Only if no protocol wrote in between (it set a new deadline).
                result = self.collection.update_one(
                    {"_id": doc["_id"], "offline_at": doc["offline_at"]},
                    {"$set": {"status": status, "offline_at": offline_at}},
                )
                if result.modified_count and status != doc.get("status"):
                    changed += 1
        return changed

    def _recompute(self, serial: str, now: datetime) -> None:
        doc = self.collection.find_one({"_id": serial})
        if doc is None:
            return
        status, offline_at = online.effective(doc, now)
        self.collection.update_one(
            {"_id": doc["_id"], "offline_at": doc.get("offline_at")},
            {"$set": {"status": status, "offline_at": offline_at}},
        )

    def set_params(self, serial: str, params: dict[str, str], now: datetime | None = None) -> bool:
        """Store the parameters read by refresh_device_parameters (replacing
        the previous read). False if the device is unknown."""
        items = [{"path": str(path), "value": str(value)} for path, value in params.items()]
        result = self.collection.update_one(
            {"_id": serial}, {"$set": {"params": items, "params_at": now or _now()}}
        )
        return result.matched_count == 1

    def set_onboarding(self, serial: str, info: dict[str, Any]) -> bool:
        """What onboarding with a factory credential came to (cwmp/onboarding.py)."""
        result = self.collection.update_one(
            {"_id": _check_serial(serial)}, {"$set": {"cwmp.onboarding": info}}
        )
        return result.matched_count == 1

    def note_factory_refusal(self, serial: str, now: datetime) -> bool:
        """A CPE given its own credential came back with the factory one: counted,
        with the time of the last time, for its device page."""
        result = self.collection.update_one(
            {"_id": _check_serial(serial)},
            {
                "$set": {"cwmp.onboarding.factory_refused_at": now},
                "$inc": {"cwmp.onboarding.factory_refusals": 1},
            },
        )
        return result.matched_count == 1

    def connection_request(self, serial: str) -> ConnectionRequest | None:
        """The CPE's connection-request URL and credentials, or None if unknown
        or it never reported a URL."""
        doc = self.collection.find_one({"_id": serial}, {"cwmp.connection_request": 1})
        cr = ((doc or {}).get("cwmp") or {}).get("connection_request") or {}
        if not cr.get("url"):
            return None
        password = None
        if cr.get("password"):
            try:
                password = sealing.unseal(cr["password"], CR_PASSWORD_PURPOSE)
            except sealing.UnsealError:
                log.warning("connection-request password of %s sealed with another key", serial)
        return ConnectionRequest(cr["url"], cr.get("username") or "", password)

    # -- reads and edits (scripts, IDE) ---------------------------------------

    def exists(self, serial: str) -> bool:
        """Whether the device is in the registry (one lookup by _id)."""
        return self.collection.find_one({"_id": _check_serial(serial)}) is not None

    def get(self, serial: str) -> dict[str, Any] | None:
        """The whole document (without the MongoDB id), or None."""
        return self.collection.find_one({"_id": _check_serial(serial)}, {"_id": 0})

    def get_lua(self, serial: str) -> dict[str, Any] | None:
        # No projection: the embedded server projects in Python, which costs
        # more than carrying a device's whole (small) document.
        doc = self.collection.find_one({"_id": _check_serial(serial)})
        return None if doc is None else lua_table(doc)

    def all_lua(self) -> list[dict[str, Any]]:
        """Every device as a Lua device table, by serial (see listing.py)."""
        return listing.read_all(self.collection, lua_table, "sn")

    def list(
        self,
        filters: DeviceFilter | None = None,
        *,
        offset: int = 0,
        limit: int = 100,
        sort: str = "serial",
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of devices matching ``filters`` and the total that match.
        ``sort``: a field name, "-" in front for descending."""
        query = (filters or DeviceFilter()).query()
        limit = max(1, min(int(limit), MAX_PAGE))
        offset = max(0, int(offset))
        direction = pymongo.DESCENDING if sort.startswith("-") else pymongo.ASCENDING
        key = sort.lstrip("-")
        if key not in ("serial", "last_seen", "first_seen", "status", "vendor", "product_class"):
            raise ValueError(f"cannot sort devices by {key!r}")
        key = "_id" if key == "serial" else key
        cursor = (
            self.collection.find(query, {"_id": 0})
            .sort([(key, direction), ("_id", pymongo.ASCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return list(cursor), self.collection.count_documents(query)

    def count(self, filters: DeviceFilter | None = None) -> int:
        return self.collection.count_documents((filters or DeviceFilter()).query())

    def online_count(self, protocol: str) -> int:
        """Devices online now over ``protocol`` (cwmp or usp)."""
        return self.collection.count_documents({f"{protocol}.state": ONLINE})

    def counts(self) -> dict[str, dict[str, int]]:
        """How many devices by status, by vendor and by product class."""
        out: dict[str, dict[str, int]] = {}
        for name in ("status", "vendor", "product_class"):
            groups = self.collection.aggregate([{"$group": {"_id": f"${name}", "n": {"$sum": 1}}}])
            out[name] = {("" if g["_id"] is None else str(g["_id"])): g["n"] for g in groups}
        for status in STATUSES:
            out["status"].setdefault(str(status), 0)
        return out

    def delete(self, serial: str) -> bool:
        """Remove a device and the CWMP requests queued for it; True if it
        existed. Seen again later, it is new (and has no old requests): their
        requesters get no answer from the queue any more and time out."""
        deleted = self.collection.delete_one({"_id": _check_serial(serial)}).deleted_count == 1
        self._identities.forget(serial)
        for name in PER_DEVICE_COLLECTIONS:
            self.db[name].delete_many({"serial": serial})
        return deleted

    def set_alias(self, serial: str, alias: str) -> bool:
        """Name a device; False if unknown."""
        if not isinstance(alias, str):
            raise ValueError("an alias must be a string")
        result = self.collection.update_one(
            {"_id": _check_serial(serial)}, {"$set": {"alias": alias.strip()}}
        )
        return result.matched_count == 1

    # -- new-device events ----------------------------------------------------

    def announce_pending(self, min_age_s: float = ANNOUNCE_RETRY_AFTER_S) -> int:
        """Publish the new-device events whose publication did not complete
        (a crash or a NATS outage right after the insert). Returns how many
        were handed to the announcer."""
        if self.announcer is None:
            return 0
        self.flush_announced()
        cutoff = _now() - timedelta(seconds=min_age_s)
        docs = self.collection.find({"announce_pending": True, "first_seen": {"$lte": cutoff}})
        count = 0
        for doc in docs:
            self._send(doc, self._protocol_of(doc))
            count += 1
        return count

    def _announce(self, update_doc: dict, protocol: str) -> None:
        if self.announcer is None:
            return
        inserted = _expand({**update_doc["$setOnInsert"], **update_doc["$set"]})
        self._send(inserted, protocol)

    def _send(self, doc: dict, protocol: str) -> None:
        # One insert, one id: the same insert announced twice (a retry) is
        # dropped by JetStream; a device deleted and seen again is a new insert.
        insert = {"_id": doc["serial"], "first_seen": doc["first_seen"]}
        msg_id = f"{doc['serial']}@{iso(doc['first_seen'])}"

        def done() -> None:
            self._announced(insert)

        try:
            self.announcer.announce(lua_table(doc), protocol, msg_id, done)
        except Exception:  # never fail a protocol's write over an event; it stays pending
            log.exception("announcing new device %s failed", doc.get("serial"))

    def _announced(self, insert: dict) -> None:
        # Clearing flags one write per device would double the cost of a
        # bootstrap storm: collect them for a moment and clear them in one bulk.
        with self._acked_lock:
            self._acked.append(insert)
            if self._acked_timer is not None:
                return
            self._acked_timer = threading.Timer(ACK_FLUSH_DELAY_S, self.flush_announced)
            self._acked_timer.daemon = True
        self._acked_timer.start()

    def flush_announced(self) -> int:
        """Clear the pending flag of the devices whose event JetStream
        acknowledged (done by itself shortly after; call it before exiting)."""
        with self._acked_lock:
            acked, self._acked = self._acked, []
            self._acked_timer = None
        if not acked:
            return 0
        try:
            self.collection.bulk_write(_clear_flags(acked), ordered=False)
        except PyMongoError as exc:  # they stay pending: announce_pending re-sends, deduplicated
            log.warning("clearing %d announced flags failed: %s", len(acked), exc)
        return len(acked)

    @staticmethod
    def _protocol_of(doc: dict) -> str:
        return next((p for p in PROTOCOLS if isinstance(doc.get(p), dict)), "")

    # -- internals ------------------------------------------------------------

    @classmethod
    def _prepare(cls, update: DeviceUpdate, now: datetime) -> Write:
        # Checked here, in the caller's thread: a bad update fails alone.
        doc = cls._update_doc(update, now)
        facts = identity.facts_of(update.protocol, doc["$set"])
        return Write(update.serial, update.protocol, doc, now, facts)

    @staticmethod
    def _update_doc(update: DeviceUpdate, now: datetime) -> dict[str, Any]:
        # A new serial must be a valid identifier; reads take any stored one.
        identifiers.check_serial(update.serial)
        _check_protocol(update.protocol)
        p = update.protocol
        fields: dict[str, Any] = {}
        for name, value in update.shared.items():
            if name not in SHARED_FIELDS:
                raise ValueError(f"{name!r} is not a shared device field")
            if value not in (None, ""):
                fields[name] = value
        for name, value in update.fields.items():
            if value is not None:
                fields[f"{p}.{name}"] = value
        fields["last_seen"] = now
        fields[f"{p}.last_seen"] = now
        if update.state is not None:
            until = online.deadline(now, update.silence_s)
            fields[f"{p}.state"] = update.state
            fields[f"{p}.offline_at"] = until
            if update.state != OFFLINE:  # OFFLINE: recomputed from both protocols after
                fields["status"] = update.state
                fields["offline_at"] = until
        on_insert: dict[str, Any] = {
            "serial": update.serial,
            "first_seen": now,
            "announce_pending": True,
        }
        if "status" not in fields:
            on_insert["status"] = OFFLINE
        # No "alias" until one is set: readers take a missing one as "", and
        # every field of an upsert costs the embedded server (writes.py).
        return {"$set": fields, "$setOnInsert": on_insert}
