"""Bulk runs: one run of a script per device matching a filter.

Creating a bulk run pins the script version and lists the matching devices
once (one BulkRunItem each, "pending"). A scheduler process then drives it
under a lease (so two processes never both start items): it keeps at most
``concurrency`` items running, each a run with the serial as argument
``serial_arg``, copies each finished run's status and result onto its item,
and marks the bulk run "finished" when no item is left. Stopping cancels the
running runs and marks the pending items "stopped"; retrying puts the failed,
lost, cancelled and stopped items back to "pending".

An item whose run was lost with its worker is run again by itself (at most
LOST_RETRIES times), as the same piece of work: every attempt has the replay
key of the first (Run.replay_key), so a device call an earlier attempt made
is not made again, the new attempt gets its answer (oktoscripts/cwmp/client.py):
the device is changed once however often the item is run.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from oktoscripts.automations import devicefilter, rollout, targets
from oktoscripts.automations.models import BulkRun, BulkRunItem
from oktoscripts.runs.models import Run
from oktoscripts.scripts.arguments import clean_args

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 1000
LEASE_S = 15.0
# Runs of one item lost with their worker that are run again (a script that
# kills its worker each time is not run for ever).
LOST_RETRIES = 2


def create(
    *,
    script: Any,
    version: Any,
    args: dict,
    device_filter: dict,
    concurrency: int,
    user: Any,
    registry: Any,
    serial_arg: str = "serial",
    name: str = "",
    canary: int = 0,
    wave_size: int = 0,
    wave_percent: int = 0,
    wave_pause_s: int = 0,
    failure_threshold: float | None = None,
    mode: str = "run",
) -> BulkRun:
    """Pin the version, list the devices, store the bulk run (sync). The staged
    options are rollout.py's; above the RolloutPolicy's device count it waits
    for approval ("approval") instead of starting. ``mode`` "plan": every item's
    run plans its writes instead of making them."""
    if mode not in ("run", "plan"):
        raise ValueError("mode must be run or plan")
    rollout.check_options(canary, wave_size, wave_percent, wave_pause_s, failure_threshold)
    if not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}")
    if not serial_arg or not isinstance(serial_arg, str):
        raise ValueError("serial_arg must be a non-empty argument name")
    stored_filter = devicefilter.clean(device_filter)
    target = targets.resolve(script, version)
    serials = devicefilter.serials(registry, stored_filter)
    if not serials:
        raise ValueError(f"no device matches the filter ({devicefilter.describe(stored_filter)})")
    waves = rollout.wave_numbers(len(serials), canary, wave_size, wave_percent)
    status = (
        BulkRun.Status.APPROVAL if rollout.needs_approval(len(serials)) else BulkRun.Status.RUNNING
    )
    with transaction.atomic():
        bulk = BulkRun.objects.create(
            name=name or f"{target.script.name} on {devicefilter.describe(stored_filter)}",
            script=target.script,
            version=target.version,
            args=clean_args(args),
            device_filter=stored_filter,
            serial_arg=serial_arg,
            concurrency=concurrency,
            created_by=user,
            configured_by=user,
            mode=mode,
            status=status,
            canary=canary,
            wave_size=wave_size,
            wave_percent=wave_percent,
            wave_pause_s=wave_pause_s,
            failure_threshold=failure_threshold,
            waves=(max(waves) + 1) if waves else 1,
        )
        BulkRunItem.objects.bulk_create(
            [BulkRunItem(bulk=bulk, serial=s, wave=w) for s, w in zip(serials, waves, strict=True)],
            batch_size=500,
        )
    return bulk


def progress(bulk: BulkRun) -> dict[str, Any]:
    """Counts by item status, total and done (sync)."""
    counts = dict(
        BulkRunItem.objects.filter(bulk=bulk)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    total = sum(counts.values())
    done = sum(n for s, n in counts.items() if s in BulkRunItem.DONE)
    return {
        "total": total,
        "done": done,
        "percent": round(100.0 * done / total, 1) if total else 100.0,
        "by_status": {s: counts.get(s, 0) for s in BulkRunItem.Status.values},
    }


def request_stop(bulk: BulkRun, reason: str = "") -> bool:
    """Ask the driving scheduler to stop it (also one paused or awaiting approval);
    False if it had ended already (sync)."""
    live = (BulkRun.Status.RUNNING, BulkRun.Status.PAUSED, BulkRun.Status.APPROVAL)
    return bool(
        BulkRun.objects.filter(pk=bulk.pk, status__in=live).update(
            status=BulkRun.Status.STOPPING, updated=timezone.now(), stop_reason=reason[:500]
        )
    )


def retry_failed(bulk: BulkRun, user: Any = None) -> int:
    """Put the items that did not succeed back to pending; returns how many (sync).
    Who retries configures it: the retried runs act for them."""
    with transaction.atomic():
        locked = BulkRun.objects.select_for_update().get(pk=bulk.pk)
        if locked.status == BulkRun.Status.STOPPING:
            raise ValueError("the bulk run is stopping; retry once it has stopped")
        # Without their old run: a retry is a new piece of work (a new replay key).
        n = BulkRunItem.objects.filter(bulk=bulk, status__in=BulkRunItem.RETRYABLE).update(
            status=BulkRunItem.Status.PENDING, run_id=None, updated=timezone.now()
        )
        if n:
            BulkRun.objects.filter(pk=bulk.pk).update(
                status=BulkRun.Status.RUNNING,
                finished=None,
                updated=timezone.now(),
                configured_by=user,
            )
    return n


# -- the driver, in the scheduler process ---------------------------------------


@dataclass
class Step:
    """What one pass of the driver decided (sync part), for the async part to do."""

    bulk_id: int
    to_start: list[tuple[int, str, str, str]]  # (item id, serial, run id, replay key)
    to_cancel: list[str]  # run ids
    running_run_ids: list[str]


def lease(owner: str) -> list[int]:
    """Take (or keep) the lease of active bulk runs that nobody else holds (sync)."""
    now = timezone.now()
    until = now + timedelta(seconds=LEASE_S)
    active = BulkRun.objects.filter(
        status__in=(BulkRun.Status.RUNNING, BulkRun.Status.PAUSED, BulkRun.Status.STOPPING)
    ).values_list("id", "owner", "lease_until")
    held = []
    for bulk_id, current, current_until in active:
        if current and current != owner and current_until and current_until > now:
            continue
        won = BulkRun.objects.filter(pk=bulk_id, owner=current, lease_until=current_until).update(
            owner=owner, lease_until=until
        )
        if won:
            held.append(bulk_id)
    return held


def _collect_finished(bulk_id: int) -> None:
    """Copy the outcome of finished runs onto their items."""
    running = dict(
        BulkRunItem.objects.filter(bulk_id=bulk_id, status=BulkRunItem.Status.RUNNING)
        .exclude(run_id=None)
        .values_list("run_id", "id")
    )
    if not running:
        return
    ids = list(running)
    for start in range(0, len(ids), 500):
        finished = Run.objects.filter(pk__in=ids[start : start + 500], status__in=Run.FINAL)
        for run_id, status, result, error, replay_key in finished.values_list(
            "id", "status", "result", "error", "replay_key"
        ):
            item = BulkRunItem.objects.filter(pk=running[run_id], run_id=run_id)
            if status == Run.Status.LOST and _run_again(replay_key):
                # Pending with the lost run kept: plan() gives the next attempt its replay key.
                item.update(status=BulkRunItem.Status.PENDING, updated=timezone.now())
                continue
            item.update(
                status=status,
                result=result,
                error=((error or {}).get("message") or "")[:1000],
                updated=timezone.now(),
            )


def _run_again(replay_key: str) -> bool:
    lost = Run.objects.filter(replay_key=replay_key, status=Run.Status.LOST).count()
    return bool(replay_key) and lost <= LOST_RETRIES


def _replay_keys(run_ids: list) -> dict[str, str]:
    """The replay key of each of these (lost) runs, for their next attempt."""
    rows = Run.objects.filter(pk__in=[r for r in run_ids if r]).values_list("id", "replay_key")
    return {str(run_id): key for run_id, key in rows}


def plan(bulk_id: int, owner: str) -> Step | None:
    """Collect finished runs, then decide what to start or cancel (sync)."""
    _collect_finished(bulk_id)
    bulk = BulkRun.objects.filter(pk=bulk_id, owner=owner).first()
    if bulk is None:
        return None
    items = BulkRunItem.objects.filter(bulk_id=bulk_id)
    running = list(items.filter(status=BulkRunItem.Status.RUNNING).values_list("run_id", flat=True))
    running_ids = [str(r) for r in running if r]
    if bulk.status == BulkRun.Status.STOPPING:
        items.filter(status=BulkRunItem.Status.PENDING).update(
            status=BulkRunItem.Status.STOPPED, updated=timezone.now()
        )
        if not running:
            BulkRun.objects.filter(pk=bulk_id, status=BulkRun.Status.STOPPING).update(
                status=BulkRun.Status.STOPPED, finished=timezone.now(), owner=""
            )
        return Step(bulk_id, [], running_ids, running_ids)
    if bulk.status == BulkRun.Status.PAUSED:  # running items finish; none starts
        return Step(bulk_id, [], [], running_ids)
    rollout.advance(bulk)
    if bulk.status != BulkRun.Status.RUNNING:  # stopped on its failure threshold
        return Step(bulk_id, [], [], running_ids)
    room = bulk.concurrency - len(running)
    to_start = []
    if room > 0:
        # Only the current wave's (and earlier waves' retried) items.
        pending = list(
            items.filter(
                status=BulkRunItem.Status.PENDING, wave__lte=bulk.current_wave
            ).values_list("id", "serial", "run_id")[:room]
        )
        earlier = _replay_keys([previous for _, _, previous in pending])
        for item_id, serial, previous in pending:
            run_id = str(uuid.uuid4())
            if items.filter(pk=item_id, status=BulkRunItem.Status.PENDING).update(
                status=BulkRunItem.Status.RUNNING,
                run_id=run_id,
                attempts=F("attempts") + 1,
                updated=timezone.now(),
            ):
                # A lost run's next attempt is the same work; anything else is new.
                replay_key = earlier.get(str(previous)) or run_id
                to_start.append((item_id, serial, run_id, replay_key))
    waiting = bulk.current_wave + 1 < bulk.waves  # a later wave, after its pause
    if not running and not to_start and not waiting:
        BulkRun.objects.filter(pk=bulk_id, status=BulkRun.Status.RUNNING).update(
            status=BulkRun.Status.FINISHED, finished=timezone.now(), owner=""
        )
    return Step(bulk_id, to_start, [], running_ids + [r for _, _, r, _ in to_start])


def start_context(bulk_id: int) -> tuple[targets.Target, BulkRun]:
    bulk = BulkRun.objects.select_related("script", "version", "configured_by").get(pk=bulk_id)
    return targets.resolve_for(bulk), bulk


def mark_not_started(item_id: int, message: str) -> None:
    BulkRunItem.objects.filter(pk=item_id).update(
        status=BulkRunItem.Status.FAILED, error=message[:1000], updated=timezone.now()
    )
