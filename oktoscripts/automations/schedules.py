"""Cron schedules: validating, previewing, and running each tick exactly once.

A tick is claimed by one conditional UPDATE: ``next_tick`` moves from the
tick being run to the following one only if it still holds that tick. Of any
number of scheduler processes looking at the same due schedule, exactly one
sees its UPDATE change a row (on SQLite and PostgreSQL alike), and only that
one records the tick and starts the run. The ScheduleTick row, unique per
(schedule, tick), records it and guards the rule once more.

A tick later than ``grace`` seconds (the scheduler was down) is "missed":
the schedule's policy says whether it is skipped or run once (one run for
however many ticks were missed). Either way the next tick is the first one
after now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from django.db import IntegrityError, transaction
from django.utils import timezone

from oktoscripts import config
from oktoscripts.automations import targets
from oktoscripts.automations.models import Schedule, ScheduleTick
from oktoscripts.scripts.arguments import clean_args

log = logging.getLogger(__name__)

PREVIEW_MAX = 50


def grace_s() -> float:
    """How late a tick may run and still count as on time (OKTOSCRIPTS_SCHEDULE_GRACE)."""
    return float(config.value("OKTOSCRIPTS_SCHEDULE_GRACE"))


class ScheduleError(ValueError):
    """A cron expression or time zone that cannot be used; the message says why."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Paris)"
        ) from None


def check(cron: str, tz: str) -> None:
    """Raise ScheduleError unless the expression and zone make a schedule."""
    zone(tz)
    fields = cron.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"a cron expression has 5 fields (minute hour day month weekday), or 6 with "
            f"seconds last; got {len(fields)} in {cron!r}"
        )
    if not croniter.is_valid(cron):
        raise ScheduleError(f"invalid cron expression {cron!r}")
    try:
        next_after(cron, tz, timezone.now())
    except (CroniterBadCronError, CroniterBadDateError) as exc:
        raise ScheduleError(f"invalid cron expression {cron!r}: {exc}") from None


def next_after(cron: str, tz: str, after: datetime) -> datetime:
    """The first tick strictly after ``after``, in UTC (DST handled in the zone)."""
    local = after.astimezone(zone(tz))
    tick = croniter(cron, local).get_next(datetime)
    return tick.astimezone(UTC)


def preview(cron: str, tz: str, count: int = 5, after: datetime | None = None) -> list[datetime]:
    """The next ``count`` ticks (aware datetimes in the schedule's zone)."""
    check(cron, tz)
    count = max(1, min(int(count), PREVIEW_MAX))
    it = croniter(cron, (after or timezone.now()).astimezone(zone(tz)))
    return [it.get_next(datetime) for _ in range(count)]


def reset_next_tick(schedule: Schedule, now: datetime | None = None) -> None:
    """After creating, editing or enabling: the next tick is the first after now."""
    schedule.next_tick = (
        next_after(schedule.cron, schedule.timezone, now or timezone.now())
        if schedule.enabled
        else None
    )


@dataclass(frozen=True)
class Claim:
    """A tick this process won; ``run`` says whether to start a run for it."""

    schedule_id: int
    tick: datetime
    run: bool
    missed: int
    outcome: str


def _count_missed(schedule: Schedule, due: datetime, now: datetime) -> int:
    """Ticks after ``due`` up to now (also missed), capped: only a number to show."""
    n, tick = 0, due
    while n < 1000:
        tick = next_after(schedule.cron, schedule.timezone, tick)
        if tick > now:
            break
        n += 1
    return n


def claim_due(now: datetime | None = None, owner: str = "") -> list[Claim]:
    """Claim every due tick of every enabled schedule. Sync (ORM)."""
    now = now or timezone.now()
    claims = []
    due = Schedule.objects.filter(enabled=True, next_tick__lte=now).only(
        "id", "cron", "timezone", "next_tick", "missed"
    )
    for schedule in due:
        claim = _claim(schedule, now, owner)
        if claim is not None:
            claims.append(claim)
    return claims


def _claim(schedule: Schedule, now: datetime, owner: str) -> Claim | None:
    tick = schedule.next_tick
    late = (now - tick).total_seconds()
    if late <= grace_s():
        # On time: run this tick; a following tick already due is the next claim.
        following = next_after(schedule.cron, schedule.timezone, tick)
        missed, outcome, run = 0, ScheduleTick.Outcome.STARTED, True
    else:
        following = next_after(schedule.cron, schedule.timezone, now)
        missed = _count_missed(schedule, tick, now)
        if schedule.missed == Schedule.Missed.RUN_ONCE:
            outcome, run = ScheduleTick.Outcome.CAUGHT_UP, True
        else:
            outcome, run = ScheduleTick.Outcome.SKIPPED, False
    try:
        with transaction.atomic():
            won = Schedule.objects.filter(pk=schedule.pk, enabled=True, next_tick=tick).update(
                next_tick=following, last_tick=tick
            )
            if not won:
                return None  # another scheduler claimed it, or it was edited meanwhile
            ScheduleTick.objects.create(
                schedule_id=schedule.pk,
                tick=tick,
                outcome=outcome,
                missed=missed,
                claimed_by=owner[:80],
            )
    except IntegrityError:
        return None  # this tick is recorded already (the schedule was reset onto it)
    return Claim(schedule.pk, tick, run, missed, outcome)


def tick_label(schedule: Schedule, claim: Claim) -> str:
    local = claim.tick.astimezone(zone(schedule.timezone))
    text = f"schedule {schedule.name} #{schedule.pk} tick {local.isoformat()}"
    if claim.missed:
        text += f" (+{claim.missed} missed)"
    return text


async def fire(claim: Claim, nc) -> str | None:  # noqa: ANN001 - nats Client
    """Start the run of a claimed tick; returns its id (None: nothing to run)."""
    from asgiref.sync import sync_to_async

    if not claim.run:
        return None
    schedule = await Schedule.objects.select_related("script", "version", "configured_by").aget(
        pk=claim.schedule_id
    )
    try:
        target = await sync_to_async(targets.resolve_for)(schedule)
        run_id = await targets.astart(
            target,
            args=dict(schedule.args or {}),
            started_by="schedule",
            trigger=tick_label(schedule, claim),
            nc=nc,
            **schedule.acting_for(),
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the tick, shown in the IDE
        log.warning("schedule %s: tick %s could not start: %s", schedule.pk, claim.tick, exc)
        await ScheduleTick.objects.filter(schedule_id=claim.schedule_id, tick=claim.tick).aupdate(
            outcome=ScheduleTick.Outcome.FAILED, message=str(exc)[:500]
        )
        return None
    await ScheduleTick.objects.filter(schedule_id=claim.schedule_id, tick=claim.tick).aupdate(
        run_id=run_id
    )
    await Schedule.objects.filter(pk=claim.schedule_id).aupdate(last_run_id=run_id)
    return run_id


# -- creating and editing ----------------------------------------------------

EDITABLE = ("name", "cron", "timezone", "missed", "enabled", "args", "version")


def save(schedule: Schedule, **fields: object) -> Schedule:
    """Create or edit a schedule from checked fields (sync); ScheduleError or
    ValueError says what is wrong. The next tick is recomputed when the timing
    changes or the schedule is (re-)enabled, so a tick is never claimed twice."""
    before = (schedule.cron, schedule.timezone, schedule.enabled) if schedule.pk else None
    for key, value in fields.items():
        if key not in EDITABLE:
            raise ValueError(f"unknown schedule field {key!r}")
        setattr(schedule, key, value)
    schedule.name = (schedule.name or "").strip()[:200]
    if not schedule.name:
        raise ValueError("a schedule needs a name")
    schedule.cron = " ".join((schedule.cron or "").split())
    check(schedule.cron, schedule.timezone)
    if schedule.missed not in Schedule.Missed.values:
        raise ValueError(f"missed must be one of {', '.join(Schedule.Missed.values)}")
    schedule.args = clean_args(schedule.args)  # the one rule of every run's arguments
    targets.resolve(schedule.script, schedule.version)  # the script can run
    if before != (schedule.cron, schedule.timezone, schedule.enabled):
        reset_next_tick(schedule)
    schedule.updated = timezone.now()
    schedule.save()
    return schedule
