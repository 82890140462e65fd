"""Schedules: validation, preview, exactly-once ticks with two schedulers, missed ticks."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async

from oktoscripts.automations import schedules
from oktoscripts.automations.models import Schedule, ScheduleTick
from oktoscripts.runs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


def test_bad_cron_and_zone_are_refused_with_a_clear_message():
    with pytest.raises(schedules.ScheduleError, match="5 fields"):
        schedules.check("* * *", "UTC")
    with pytest.raises(schedules.ScheduleError, match="invalid cron"):
        schedules.check("61 * * * *", "UTC")
    with pytest.raises(schedules.ScheduleError, match="unknown time zone"):
        schedules.check("0 3 * * *", "Mars/Olympus")


def test_preview_follows_the_time_zone_across_dst():
    # 02:30 every day in Paris: on the night clocks go forward (2026-03-29) it does not exist.
    after = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    ticks = schedules.preview("30 2 * * *", "Europe/Paris", 3, after=after)
    assert [t.utcoffset() for t in ticks][0] == timedelta(hours=1)
    assert ticks[0].isoformat() == "2026-03-28T02:30:00+01:00"
    assert ticks[-1].utcoffset() == timedelta(hours=2)  # summer time after the change
    hourly = schedules.preview("0 * * * *", "UTC", 4, after=after)
    assert [t.hour for t in hourly] == [13, 14, 15, 16]


async def _schedule(make_script, cron: str, missed: str = "skip") -> Schedule:
    script = await sync_to_async(make_script)("tick.lua", "return {tick = true, n = (...).n}")

    def create() -> Schedule:
        s = Schedule(name="every second", script=script, args={"n": 7}, cron=cron, missed=missed)
        schedules.reset_next_tick(s)
        s.save()
        return s

    return await sync_to_async(create)()


async def test_two_scheduler_processes_run_each_tick_exactly_once(
    make_script, scheduler_process, worker_process
):
    worker_process()
    first, second = scheduler_process("a"), scheduler_process("b")
    schedule = await _schedule(make_script, "* * * * * *")  # every second (6th field = seconds)
    await asyncio.sleep(6)
    await Schedule.objects.filter(pk=schedule.pk).aupdate(enabled=False)
    await asyncio.sleep(1)  # a tick claimed just before may still be submitting
    first.stop()
    second.stop()
    ticks = [t async for t in ScheduleTick.objects.filter(schedule=schedule).order_by("tick")]
    assert len(ticks) >= 4
    assert all(t.outcome == "started" and t.run_id for t in ticks)
    # Consecutive seconds: no tick skipped, none twice (the table's unique key would refuse it).
    assert [(b.tick - a.tick).total_seconds() for a, b in zip(ticks, ticks[1:], strict=False)] == [
        1.0
    ] * (len(ticks) - 1)
    runs = [r async for r in Run.objects.filter(started_by="schedule")]
    assert sorted(str(r.id) for r in runs) == sorted(str(t.run_id) for t in ticks)
    assert {r.trigger.split(" tick ")[0] for r in runs} == {f"schedule every second #{schedule.pk}"}
    deadline = time.monotonic() + 20
    while await Run.objects.filter(started_by="schedule").exclude(status="succeeded").aexists():
        assert time.monotonic() < deadline, "scheduled runs did not all succeed"
        await asyncio.sleep(0.1)
    run = await Run.objects.aget(pk=ticks[0].run_id)
    assert run.result == {"tick": True, "n": 7}
    # Which process won each tick is recorded (which one wins is up to the race).
    assert {t.claimed_by for t in ticks} <= {"a", "b"}


async def test_missed_ticks_follow_the_schedule_policy(make_script, nc):
    skip = await _schedule(make_script, "*/5 * * * *", missed="skip")
    once = await sync_to_async(Schedule.objects.create)(
        name="catch up",
        script_id=skip.script_id,
        cron="*/5 * * * *",
        missed="run_once",
        next_tick=datetime(2000, 1, 1, tzinfo=UTC),
    )
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    await Schedule.objects.filter(pk=skip.pk).aupdate(
        next_tick=long_ago.replace(second=0, microsecond=0)
    )
    claims = await sync_to_async(schedules.claim_due)()
    assert sorted(c.outcome for c in claims) == ["caught_up", "skipped"]
    assert await sync_to_async(schedules.claim_due)() == []  # nothing due any more
    for claim in claims:
        await schedules.fire(claim, nc)
    ticks = {t.schedule_id: t async for t in ScheduleTick.objects.all()}
    assert ticks[skip.pk].outcome == "skipped" and ticks[skip.pk].run_id is None
    assert ticks[skip.pk].missed >= 20  # two hours of 5-minute ticks were missed
    assert ticks[once.pk].outcome == "caught_up" and ticks[once.pk].run_id is not None
    now = datetime.now(UTC)
    for s in [s async for s in Schedule.objects.all()]:
        assert now < s.next_tick <= now + timedelta(minutes=5)
    assert await Run.objects.filter(started_by="schedule").acount() == 1


def test_concurrent_claims_of_one_tick_give_exactly_one_winner(make_script):
    """Eight threads (eight database connections) race for the same due tick."""
    import threading

    from django.db import connections

    script = make_script("race.lua", "return 1")
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    schedule = Schedule.objects.create(
        name="race", script=script, cron="* * * * * *", next_tick=due
    )
    barrier = threading.Barrier(8)
    won: list = []

    def compete(n: int) -> None:
        try:
            barrier.wait()
            won.extend(schedules.claim_due(due + timedelta(seconds=0.5), owner=f"t{n}"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=compete, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [(c.schedule_id, c.tick) for c in won] == [(schedule.pk, due)]
    tick = ScheduleTick.objects.get(schedule=schedule)
    assert tick.claimed_by.startswith("t")
    schedule.refresh_from_db()
    assert schedule.next_tick == due + timedelta(seconds=1)


async def test_a_scheduled_run_gets_the_platform_limits_within_the_caps(make_script, nc):
    """As a run from the IDE: script override > platform setting > built-in, capped."""
    from oktoscripts.runs.caps import HARD_CAPS
    from oktoscripts.scripts.models import PlatformSettings, Script

    schedule = await _schedule(make_script, "*/5 * * * *")
    await sync_to_async(PlatformSettings.load)()
    await PlatformSettings.objects.aupdate(wall_seconds=30.0)
    await Script.objects.filter(pk=schedule.script_id).aupdate(limits={"memory_bytes": 10**12})
    claim = schedules.Claim(schedule.pk, datetime.now(UTC), True, 0, "started")
    await ScheduleTick.objects.acreate(schedule=schedule, tick=claim.tick, outcome="started")
    run = await Run.objects.aget(pk=await schedules.fire(claim, nc))
    assert run.limits["wall_seconds"] == 30.0
    assert run.limits["memory_bytes"] == HARD_CAPS.memory_bytes
