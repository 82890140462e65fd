"""Online state: protocols say when a device is online, the sweeper takes the
silent ones offline, and a restart leaves no gone device online."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pymongo

from oktoscripts.devices.documents import ASSOCIATING, OFFLINE, ONLINE
from oktoscripts.devices.online import cwmp_silence_s
from oktoscripts.devices.registry import DeviceRegistry

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def status(registry: DeviceRegistry, serial: str) -> int:
    return registry.get_lua(serial)["status"]


def test_cwmp_device_goes_offline_after_a_multiple_of_its_inform_interval(registry, settings):
    settings.DEVICES_OFFLINE_FACTOR = 3
    registry.upsert_cwmp("CPE", periodic_inform_interval=300, now=T0)
    assert registry.sweep_offline(T0 + timedelta(seconds=899)) == 0
    assert status(registry, "CPE") == ONLINE
    assert registry.sweep_offline(T0 + timedelta(seconds=900)) == 1
    assert status(registry, "CPE") == OFFLINE
    # The next Inform brings it back, with a new deadline.
    registry.upsert_cwmp("CPE", periodic_inform_interval=300, now=T0 + timedelta(hours=1))
    assert status(registry, "CPE") == ONLINE
    assert registry.sweep_offline(T0 + timedelta(hours=1, seconds=899)) == 0


def test_a_new_inform_moves_the_deadline(registry):
    registry.upsert_cwmp("CPE", periodic_inform_interval=60, now=T0)
    registry.upsert_cwmp("CPE", periodic_inform_interval=60, now=T0 + timedelta(seconds=170))
    assert registry.sweep_offline(T0 + timedelta(seconds=200)) == 0
    assert status(registry, "CPE") == ONLINE


def test_silence_setting(settings):
    settings.DEVICES_OFFLINE_FACTOR = 2
    settings.DEVICES_OFFLINE_TIMEOUT = 600
    assert cwmp_silence_s(300) == 600
    assert cwmp_silence_s(10) == 60  # never less than a minute
    assert cwmp_silence_s(None) == 600
    assert cwmp_silence_s(0) == 600


def test_usp_device_is_online_while_its_mtp_is_connected(registry):
    registry.upsert_usp("os::a", mtp="websocket", now=T0)
    assert registry.sweep_offline(T0 + timedelta(days=30)) == 0
    assert status(registry, "os::a") == ONLINE
    assert registry.set_offline("os::a", "usp", mtp="websocket", now=T0 + timedelta(days=30))
    assert status(registry, "os::a") == OFFLINE
    assert registry.get("os::a")["usp"]["mtps"]["websocket"]["state"] == "disconnected"
    assert registry.set_offline("os::unknown", "usp") is False


def test_device_on_both_protocols_stays_online_while_either_sees_it(registry):
    registry.upsert_cwmp("BOTH", periodic_inform_interval=60, now=T0)
    registry.upsert_usp("BOTH", mtp="mqtt", now=T0 + timedelta(seconds=1))
    registry.sweep_offline(T0 + timedelta(hours=2))  # CWMP silent for long
    assert status(registry, "BOTH") == ONLINE
    registry.set_offline("BOTH", "usp", now=T0 + timedelta(hours=2))
    assert status(registry, "BOTH") == OFFLINE

    registry.upsert_usp("BOTH", mtp="mqtt", now=T0 + timedelta(hours=3))
    registry.upsert_cwmp("BOTH", periodic_inform_interval=60, now=T0 + timedelta(hours=3))
    registry.set_offline("BOTH", "usp", now=T0 + timedelta(hours=3, seconds=1))
    assert status(registry, "BOTH") == ONLINE  # the CWMP view has not expired
    registry.sweep_offline(T0 + timedelta(hours=4))
    assert status(registry, "BOTH") == OFFLINE


def test_usp_lease_expires_without_renewal(registry):
    registry.upsert_usp("os::mqtt", mtp="mqtt", lease_s=120, now=T0)
    registry.sweep_offline(T0 + timedelta(seconds=60))
    assert status(registry, "os::mqtt") == ONLINE
    registry.sweep_offline(T0 + timedelta(seconds=121))
    assert status(registry, "os::mqtt") == OFFLINE


def test_associating_state(registry):
    registry.upsert_usp("os::new", state=ASSOCIATING, now=T0)
    assert status(registry, "os::new") == ASSOCIATING
    registry.upsert_usp("os::new", now=T0)
    assert status(registry, "os::new") == ONLINE


def test_restarted_controller_releases_its_connections(registry):
    registry.upsert_usp("os::1", mtp="websocket", owner="usp-a", now=T0)
    registry.upsert_usp("os::2", mtp="websocket", owner="usp-b", now=T0)
    assert registry.release_owner("usp", "usp-a") == 1
    assert status(registry, "os::1") == OFFLINE
    assert status(registry, "os::2") == ONLINE


def test_deadlines_survive_a_restart_and_the_first_sweep_applies_them(mongo_uri, mdb):
    # One process registers, then "the platform stops" (its client goes away).
    first = DeviceRegistry(mdb)
    first.ensure_indexes()
    first.upsert_cwmp("RESTART", periodic_inform_interval=300, now=T0)
    # A new process, with a new client, sweeps on start an hour later.
    client = pymongo.MongoClient(mongo_uri, tz_aware=True)
    try:
        second = DeviceRegistry(client[mdb.name])
        assert second.sweep_offline(T0 + timedelta(hours=1)) == 1
        assert second.get_lua("RESTART")["status"] == OFFLINE
    finally:
        client.close()


def test_sweep_does_not_undo_a_concurrent_inform(registry):
    registry.upsert_cwmp("RACE", periodic_inform_interval=60, now=T0)
    # The Inform arrives after the deadline but before the sweep runs.
    registry.upsert_cwmp("RACE", periodic_inform_interval=60, now=T0 + timedelta(seconds=500))
    registry.sweep_offline(T0 + timedelta(seconds=501))
    assert status(registry, "RACE") == ONLINE


async def test_maintenance_task_sweeps_at_once_when_a_process_starts(registry):
    import asyncio

    from oktoscripts.devices.maintenance import maintain

    long_ago = datetime.now(UTC) - timedelta(hours=2)
    registry.upsert_cwmp("STALE", periodic_inform_interval=300, now=long_ago)
    registry.upsert_cwmp("FRESH", periodic_inform_interval=300)
    task = asyncio.create_task(maintain(registry, every_s=0.05))
    try:
        for _ in range(400):
            if status(registry, "STALE") == OFFLINE:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert status(registry, "STALE") == OFFLINE
    assert status(registry, "FRESH") == ONLINE


def test_set_offline_of_a_protocol_the_device_does_not_use(registry):
    registry.upsert_cwmp("ONLY-CWMP", now=T0)
    assert registry.set_offline("ONLY-CWMP", "usp", now=T0) is False
    table = registry.get_lua("ONLY-CWMP")
    assert table["usp"] is False and table["status"] == ONLINE
