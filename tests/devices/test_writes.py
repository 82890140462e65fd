"""How upserts reach MongoDB: a known device's identity is not written again,
and that never changes what the document holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pymongo
import pytest
from pymongo import monitoring
from pymongo.errors import WriteError

from oktoscripts.devices import identity
from oktoscripts.devices.registry import DeviceRegistry, DeviceUpdate

from .test_registry import inform

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def first_inform(registry: DeviceRegistry, serial: str, now: datetime, **extra):
    first = dict(software_version="V1", connection_request_password="crpass")
    first["events"] = ["0 BOOTSTRAP", "1 BOOT"]
    return inform(registry, serial, now, **{**first, **extra})


def periodic(registry: DeviceRegistry, serial: str, now: datetime, **extra):
    """What a periodic Inform says (no credentials, no model name)."""
    fields = dict(
        oui="00AABB",
        product_class="HG8245",
        manufacturer="Huawei",
        software_version="V1",
        hardware_version="HW1",
        data_model="TR-098",
        ip="10.0.0.5",
        periodic_inform_interval=300,
        connection_request_url="http://10.0.0.5:7547/cr",
        events=["2 PERIODIC"],
    )
    fields.update(extra)
    return registry.upsert_cwmp(serial, now=now, **fields)


def history(registry: DeviceRegistry, serial: str) -> None:
    """A device's life: Informs, credentials set by the ACS, a USP agent, a
    firmware upgrade, an IP change, the MTP lost, an alias."""
    first_inform(registry, serial, T0)
    periodic(registry, serial, T0 + timedelta(minutes=5))
    registry.upsert_cwmp(
        serial,
        model="HG8245H",
        connection_request_username="okto-1",
        connection_request_password="secret-2",
        state=None,
        now=T0 + timedelta(minutes=5, seconds=1),
    )
    periodic(registry, serial, T0 + timedelta(minutes=10), events=["6 CONNECTION REQUEST"])
    periodic(registry, serial, T0 + timedelta(minutes=10, seconds=30), ip="10.0.0.7")
    registry.upsert_usp(serial, vendor="Huawei", mtp="mqtt", now=T0 + timedelta(minutes=11))
    periodic(registry, serial, T0 + timedelta(minutes=15), software_version="V2", ip="10.0.0.9")
    registry.set_offline(serial, "usp", mtp="mqtt", now=T0 + timedelta(minutes=16))
    registry.set_alias(serial, "Kitchen")
    registry.upsert_usp(serial, vendor="Huawei", mtp="mqtt", now=T0 + timedelta(minutes=17))
    periodic(registry, serial, T0 + timedelta(minutes=20), state=2)
    periodic(registry, serial, T0 + timedelta(minutes=25), ip="10.0.0.10")


def comparable(registry: DeviceRegistry, serial: str) -> dict:
    doc = registry.get(serial)
    doc.pop("serial")
    doc["cwmp"].pop("serial_number")
    doc["usp"].pop("endpoint_id")
    # Sealed with a fresh nonce each time: compare what the ACS reads back.
    doc["cwmp"]["connection_request"].pop("password")
    doc["cr"] = registry.connection_request(serial)
    return doc


class Statements(monitoring.CommandListener):
    """The update statements a client sends."""

    def __init__(self) -> None:
        self.updates: list[dict] = []

    def started(self, event) -> None:  # noqa: ANN001
        if event.command_name == "update":
            self.updates.extend(event.command["updates"])

    def succeeded(self, event) -> None:  # noqa: ANN001
        pass

    def failed(self, event) -> None:  # noqa: ANN001
        pass


@pytest.fixture
def watched(mongo_uri, mdb):
    """A registry on its own client, and the update statements it sends."""
    statements = Statements()
    client = pymongo.MongoClient(mongo_uri, tz_aware=True, event_listeners=[statements])
    registry = DeviceRegistry(client[mdb.name])
    registry.ensure_indexes()
    yield registry, statements
    client.close()


def test_a_known_device_ends_with_the_document_full_writes_give(watched, mdb):
    registry, statements = watched
    history(registry, "SKIPPING")
    # The same life through a registry that writes every field every time.
    always_full = DeviceRegistry(mdb, identity_refresh_s=0)
    history(always_full, "FULL")
    assert comparable(registry, "SKIPPING") == comparable(always_full, "FULL")
    # ... and the skipping one did leave the identity out of the later Informs.
    # (One that carries other facts than the last full one, as the first Inform
    # with its model name, or that follows a full write by the other protocol,
    # is full again.)
    informs = [u for u in statements.updates if "cwmp.last_events" in u["u"]["$set"]]
    assert "vendor" in informs[0]["u"]["$set"] and informs[0]["upsert"]
    partial = [u for u in informs if not u.get("upsert")]
    assert len(partial) == 2 and all("vendor" not in u["u"]["$set"] for u in partial)
    assert "vendor" not in informs[-1]["u"]["$set"] and not informs[-1].get("upsert")
    assert informs[-1]["u"]["$set"]["ip"] == "10.0.0.10"


def test_a_device_deleted_by_another_process_comes_back_whole_as_a_new_device(
    watched, mongo_uri, mdb
):
    registry, _ = watched
    for serial in ("KEPT", "GONE"):
        first_inform(registry, serial, T0)
    other = pymongo.MongoClient(mongo_uri, tz_aware=True)
    try:
        assert DeviceRegistry(other[mdb.name]).delete("GONE")
    finally:
        other.close()
    later = T0 + timedelta(minutes=5)
    facts = dict(manufacturer="Huawei", oui="00AABB", product_class="HG8245")
    updates = [registry.cwmp_update(s, now=later, **facts) for s in ("KEPT", "GONE")]
    assert [r.inserted for r in registry.bulk_upsert(updates, now=later)] == [False, True]
    gone = registry.get("GONE")
    assert gone["first_seen"] == later and gone["announce_pending"] is True
    assert (gone["vendor"], gone["oui"], gone["product_class"]) == ("Huawei", "00AABB", "HG8245")
    assert gone["cwmp"]["oui"] == "00AABB" and gone["cwmp"]["serial_number"] == "GONE"
    assert registry.get("KEPT")["first_seen"] == T0
    # Single upserts too (the USP controller's path).
    DeviceRegistry(mdb).delete("KEPT")
    assert registry.upsert(updates[0], now=later).inserted is True
    assert registry.get("KEPT")["vendor"] == "Huawei"


def test_a_changed_identity_is_written(registry):
    registry.upsert_usp("os::a", vendor="Acme", model="Box 1", now=T0)
    registry.upsert_usp("os::a", vendor="Acme", model="Box 2", now=T0 + timedelta(seconds=1))
    assert registry.get("os::a")["model"] == "Box 2"


def test_an_identity_is_written_in_full_again_after_the_refresh_time():
    now = [0.0]
    written = identity.WrittenIdentities(refresh_s=60, clock=lambda: now[0])
    facts = {"vendor": "Huawei", "cwmp.oui": "00AABB"}
    assert not written.written("S", "cwmp", facts)
    written.remember("S", "cwmp", facts)
    assert written.written("S", "cwmp", dict(facts))
    assert not written.written("S", "cwmp", {**facts, "vendor": "ZTE"})
    assert not written.written("S", "usp", facts)  # per protocol
    written.remember("S", "usp", facts)  # writes shared facts: cwmp's turn to write them again
    assert not written.written("S", "cwmp", facts)
    written.remember("S", "cwmp", facts)
    now[0] = 60.0
    assert not written.written("S", "cwmp", facts)
    written.remember("S", "cwmp", facts)
    written.forget("S")
    assert not written.written("S", "cwmp", facts)


def test_remembered_devices_are_bounded():
    written = identity.WrittenIdentities(max_devices=2)
    for serial in ("A", "B", "C"):
        written.remember(serial, "cwmp", {"vendor": "V"})
    assert not written.written("A", "cwmp", {"vendor": "V"})  # the oldest went
    assert written.written("C", "cwmp", {"vendor": "V"})


def test_an_update_the_database_refuses_fails_alone(registry):
    bad = DeviceUpdate("BAD", "cwmp", fields={"x": 1, "x.y": 2})  # conflicting paths
    good = [DeviceUpdate(s, "cwmp", shared={"vendor": "V"}) for s in ("OK1", "OK2")]
    with pytest.raises(WriteError):
        registry.bulk_upsert([good[0], bad, good[1]], now=T0)
    assert registry.get("OK1")["vendor"] == "V" and registry.get("OK2")["vendor"] == "V"
    assert registry.get("BAD") is None
    with pytest.raises(WriteError):
        registry.upsert(bad)
    # Known devices written without their identity are refused alone too.
    later = [DeviceUpdate(s, "cwmp", shared={"vendor": "V"}) for s in ("OK1", "OK2")]
    bad_known = DeviceUpdate("OK1", "cwmp", shared={"vendor": "V"}, fields={"x": 1, "x.y": 2})
    with pytest.raises(WriteError):
        registry.bulk_upsert([bad_known, later[1]], now=T0 + timedelta(seconds=1))
    assert registry.get("OK2")["last_seen"] == T0 + timedelta(seconds=1)
    assert registry.get("OK1")["last_seen"] == T0
