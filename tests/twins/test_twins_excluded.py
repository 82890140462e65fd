"""Device twins are marked everywhere and left out of bulk runs and triggers
unless the filter asks for them."""

from __future__ import annotations

import pytest

from oktoscripts.automations import devicefilter
from oktoscripts.devices.documents import lua_table
from oktoscripts.devices.registry import DeviceRegistry
from oktoscripts.twins import store


@pytest.fixture
def registry(mongo_db):
    registry = DeviceRegistry(mongo_db)
    registry.ensure_indexes()
    for n in (1, 2):
        registry.upsert_cwmp(
            f"EXCL-{n}",
            oui="00AABB",
            product_class="Router",
            manufacturer="Excl",
            software_version="1.0",
        )
    if mongo_db[store.TWINS].find_one({"_id": "EXCL-1~twin"}) is None:
        store.request(mongo_db, "EXCL-1", by="test")  # its twin: EXCL-1~twin
    return registry


def test_bulk_filters_leave_twins_out_unless_asked(registry):
    vendor = {"vendor": "Excl"}
    assert devicefilter.serials(registry, devicefilter.clean(vendor)) == ["EXCL-1", "EXCL-2"]
    assert devicefilter.serials(registry, devicefilter.clean({**vendor, "twins": "include"})) == [
        "EXCL-1",
        "EXCL-1~twin",
        "EXCL-2",
    ]
    assert devicefilter.serials(registry, devicefilter.clean({**vendor, "twins": "only"})) == [
        "EXCL-1~twin"
    ]
    with pytest.raises(ValueError, match="twins must be exclude, include or only"):
        devicefilter.clean({"twins": "yes"})


def test_triggers_leave_twins_out_even_without_a_filter(registry):
    assert devicefilter.matches(registry, {}, "EXCL-1")
    assert not devicefilter.matches(registry, {}, "EXCL-1~twin")
    assert devicefilter.matches(registry, {"twins": "include"}, "EXCL-1~twin")
    assert devicefilter.matches(registry, {}, "NEVER-SEEN")  # events of unknown devices run
    assert devicefilter.matches(registry, {"twins": "only"}, "EXCL-1~twin")


def test_get_device_says_twin(registry):
    assert lua_table(registry.get("EXCL-1~twin"))["twin"] is True
    assert lua_table(registry.get("EXCL-1"))["twin"] is False
    assert registry.get("EXCL-1~twin")["vendor"] == "Excl"  # the original's identity
