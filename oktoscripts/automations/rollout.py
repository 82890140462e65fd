"""Staged rollouts: a bulk run in waves, with a failure threshold and approval.

A firmware push to a whole fleet is never one click. A bulk run may have a
canary (its first N devices, wave 0), then waves of a count or a percentage
of the devices; the driver (bulk.plan) starts the items of the current wave
only. Once every item of a wave is done, the wave's failure rate (items that
did not succeed / items of the wave) is compared with the threshold: above
it the bulk run stops, its pending items "stopped", with the reason on the
page; else the next wave starts after the pause. People pause, resume and
abort it; above the device count of the Admin's RolloutPolicy, a second
person approves it before anything starts (never the person who created it),
all in the audit log.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from oktoscripts.automations.models import BulkRun, BulkRunItem, RolloutPolicy
from oktoscripts.scripts import audit


class RolloutError(ValueError):
    pass


def wave_numbers(total: int, canary: int, wave_size: int, wave_percent: int) -> list[int]:
    """The wave of each of ``total`` devices, in order: 0 for the canary, then waves
    of ``wave_size`` devices or ``wave_percent`` % of all (at least one); neither:
    the rest in one wave."""
    if canary < 0 or wave_size < 0 or not 0 <= wave_percent <= 100:
        raise RolloutError("canary and wave size must be >= 0, wave percent 0-100")
    if wave_size and wave_percent:
        raise RolloutError("give a wave size or a wave percentage, not both")
    canary = min(canary, total)
    size = wave_size or (max(1, math.ceil(total * wave_percent / 100)) if wave_percent else 0)
    rest = total - canary
    first = 1 if canary else 0
    numbers = [0] * canary
    for index in range(rest):
        numbers.append(first + (index // size if size else 0))
    return numbers


def needs_approval(total: int) -> bool:
    limit = RolloutPolicy.load().approval_above
    return limit is not None and total > limit


def check_options(
    canary: int,
    wave_size: int,
    wave_percent: int,
    wave_pause_s: int,
    failure_threshold: float | None,
) -> None:
    for name, value in (
        ("canary", canary),
        ("wave_size", wave_size),
        ("wave_percent", wave_percent),
        ("wave_pause_s", wave_pause_s),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RolloutError(f"{name} must be an integer >= 0")
    if wave_percent > 100:
        raise RolloutError("wave_percent must be at most 100")
    if failure_threshold is not None and not 0 <= failure_threshold <= 100:
        raise RolloutError("failure_threshold is a percentage, 0 to 100")


def advance(bulk: BulkRun) -> None:
    """Once the current wave is done: stop on too many failures, else move on to
    the next wave when its pause has passed (sync; the driver holds the lease)."""
    if bulk.status != BulkRun.Status.RUNNING:
        return
    wave = BulkRunItem.objects.filter(bulk=bulk, wave=bulk.current_wave)
    counts = dict(wave.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    total = sum(counts.values())
    if any(counts.get(s) for s in (BulkRunItem.Status.PENDING, BulkRunItem.Status.RUNNING)):
        return
    failed = total - counts.get(BulkRunItem.Status.SUCCEEDED, 0)
    threshold = bulk.failure_threshold
    if threshold is not None and total and 100.0 * failed / total > threshold:
        reason = (
            f"wave {bulk.current_wave}{' (canary)' if _is_canary(bulk) else ''}: "
            f"{failed} of {total} devices failed ({100.0 * failed / total:.1f}%), "
            f"above the threshold of {threshold:g}%"
        )
        stop(bulk, reason)
        audit.record("scheduler", "bulk.auto_stop", bulk.name, id=bulk.pk, reason=reason)
        return
    if bulk.current_wave + 1 >= bulk.waves:
        return  # the last wave: the driver marks it finished
    now = timezone.now()
    if bulk.next_wave_at is None:
        bulk.next_wave_at = now + timedelta(seconds=bulk.wave_pause_s)
        BulkRun.objects.filter(pk=bulk.pk).update(next_wave_at=bulk.next_wave_at)
    if now >= bulk.next_wave_at:
        bulk.current_wave += 1
        bulk.next_wave_at = None
        BulkRun.objects.filter(pk=bulk.pk).update(
            current_wave=bulk.current_wave, next_wave_at=None, updated=now
        )


def _is_canary(bulk: BulkRun) -> bool:
    return bulk.current_wave == 0 and bulk.canary > 0


def stop(bulk: BulkRun, reason: str) -> None:
    """Stop it now for ``reason``: pending items "stopped", running ones cancelled
    by the driver (the status goes through "stopping")."""
    BulkRun.objects.filter(pk=bulk.pk).exclude(
        status__in=(BulkRun.Status.STOPPED, BulkRun.Status.FINISHED)
    ).update(status=BulkRun.Status.STOPPING, stop_reason=reason[:500], updated=timezone.now())
    bulk.status = BulkRun.Status.STOPPING


def approve(bulk: BulkRun, user: Any) -> None:
    """Four eyes: anyone allowed to run bulk runs but the person who created it."""
    if bulk.status != BulkRun.Status.APPROVAL:
        raise RolloutError(f"the bulk run is {bulk.status}, not awaiting approval")
    if bulk.created_by_id is not None and bulk.created_by_id == user.pk:
        raise RolloutError("the approver cannot be the person who requested the bulk run")
    updated = BulkRun.objects.filter(pk=bulk.pk, status=BulkRun.Status.APPROVAL).update(
        status=BulkRun.Status.RUNNING,
        approved_by=user,
        approved_at=timezone.now(),
        updated=timezone.now(),
    )
    if not updated:
        raise RolloutError("the bulk run is no longer awaiting approval")


def pause(bulk: BulkRun) -> None:
    if not BulkRun.objects.filter(pk=bulk.pk, status=BulkRun.Status.RUNNING).update(
        status=BulkRun.Status.PAUSED, updated=timezone.now()
    ):
        raise RolloutError(f"the bulk run is {bulk.status}: only a running one pauses")


def resume(bulk: BulkRun) -> None:
    if not BulkRun.objects.filter(pk=bulk.pk, status=BulkRun.Status.PAUSED).update(
        status=BulkRun.Status.RUNNING, updated=timezone.now()
    ):
        raise RolloutError(f"the bulk run is {bulk.status}: only a paused one resumes")


def waves_summary(bulk: BulkRun) -> list[dict[str, Any]]:
    """Per wave: its number, whether it is the canary, and its items by status."""
    rows = (
        BulkRunItem.objects.filter(bulk=bulk)
        .values_list("wave", "status")
        .annotate(n=Count("id"))
        .order_by("wave")
    )
    waves: dict[int, dict[str, Any]] = {}
    for wave, status, n in rows:
        entry = waves.setdefault(
            wave,
            {"wave": wave, "canary": wave == 0 and bulk.canary > 0, "total": 0, "by_status": {}},
        )
        entry["total"] += n
        entry["by_status"][status] = n
    return list(waves.values())
