"""The automation records: schedules (and their claimed ticks), bulk runs
(and one item per device), event triggers and deployed listeners.

Every automation names a script and either a pinned version or none, which
means "the latest saved version when it starts a run" (bulk runs and
deployments always pin: what they run must not change under them).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class _ScriptBound(models.Model):
    """What every automation shares: the script it runs, with which arguments, by whom."""

    name = models.CharField(max_length=200)
    script = models.ForeignKey("scripts.Script", on_delete=models.PROTECT, related_name="+")
    version = models.ForeignKey(
        "scripts.ScriptVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="pinned version; empty = the latest saved version at each run",
    )
    args = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who last set what it runs (created, edited, started or retried it): its
    # runs act for this user (oktoscripts/runs/principal.py).
    configured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def acting_for(self) -> dict:
        """Who its runs act for, as ``asubmit_run`` options: the user who configured
        it, bounded by the author of the code when it runs "the latest saved version"."""
        return {"user": self.configured_by, "bounded_by_author": self.version_id is None}


class Schedule(_ScriptBound):
    class Missed(models.TextChoices):
        SKIP = "skip", "skip missed ticks"
        RUN_ONCE = "run_once", "run once for all missed ticks"

    cron = models.CharField(max_length=120, help_text="5 fields, or 6 with seconds last")
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    missed = models.CharField(max_length=10, choices=Missed.choices, default=Missed.SKIP)
    # The next tick to run (UTC). Claimed by a conditional UPDATE that moves it
    # on: of several scheduler processes, exactly one moves it, and runs it.
    next_tick = models.DateTimeField(null=True, blank=True, db_index=True)
    last_tick = models.DateTimeField(null=True, blank=True)
    last_run_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["enabled", "next_tick"], name="schedule_due")]

    def __str__(self) -> str:
        return f"schedule {self.name} ({self.cron} {self.timezone})"


class ScheduleTick(models.Model):
    """One claimed tick of a schedule: the run it started, or why none."""

    class Outcome(models.TextChoices):
        STARTED = "started"
        CAUGHT_UP = "caught_up", "started late (missed during downtime)"
        SKIPPED = "skipped", "skipped (missed during downtime)"
        FAILED = "failed", "could not start"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="ticks")
    tick = models.DateTimeField()
    claimed = models.DateTimeField(default=timezone.now)
    claimed_by = models.CharField(max_length=80, blank=True, default="")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    run_id = models.UUIDField(null=True, blank=True)
    missed = models.PositiveIntegerField(default=0, help_text="ticks missed before this one")
    message = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-tick"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "tick"], name="schedule_tick_once")
        ]


class BulkRun(_ScriptBound):
    class Status(models.TextChoices):
        APPROVAL = "approval", "awaiting approval"
        RUNNING = "running"
        PAUSED = "paused"
        STOPPING = "stopping"
        STOPPED = "stopped"
        FINISHED = "finished"

    device_filter = models.JSONField(default=dict, blank=True)
    serial_arg = models.CharField(max_length=64, default="serial")
    concurrency = models.PositiveIntegerField(default=10)
    # "plan": each device's run is in plan mode (oktoscripts/runs/gates.py): the whole
    # filter is planned first, then applied at once (bulk.start_apply).
    mode = models.CharField(max_length=8, default="run")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    finished = models.DateTimeField(null=True, blank=True)
    # A staged rollout (rollout.py): a canary wave of the first devices, then waves
    # of a count or a percentage, a pause between waves, and a stop when a wave's
    # failure rate passes the threshold (percent; None: never).
    canary = models.PositiveIntegerField(default=0)
    wave_size = models.PositiveIntegerField(default=0)
    wave_percent = models.PositiveSmallIntegerField(default=0)
    wave_pause_s = models.PositiveIntegerField(default=0)
    failure_threshold = models.FloatField(null=True, blank=True)
    waves = models.PositiveIntegerField(default=1)
    current_wave = models.PositiveIntegerField(default=0)
    next_wave_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=500, blank=True, default="")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # The scheduler process driving it, for a while (a lease), so two
    # processes never both start items and overshoot the concurrency.
    owner = models.CharField(max_length=80, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status"], name="bulk_status")]

    def __str__(self) -> str:
        return f"bulk run {self.pk} of {self.script_id}"


class BulkRunItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        LIMIT_EXCEEDED = "limit_exceeded"
        LOST = "lost"
        STOPPED = "stopped", "stopped before it started"

    RETRYABLE = (
        Status.FAILED,
        Status.LIMIT_EXCEEDED,
        Status.LOST,
        Status.CANCELLED,
        Status.STOPPED,
    )
    DONE = (*RETRYABLE, Status.SUCCEEDED)

    bulk = models.ForeignKey(BulkRun, on_delete=models.CASCADE, related_name="items")
    serial = models.CharField(max_length=255)
    wave = models.PositiveIntegerField(default=0)  # 0: the canary (or the only wave)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    run_id = models.UUIDField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True, default="")
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["bulk", "id"]
        constraints = [models.UniqueConstraint(fields=["bulk", "serial"], name="bulk_item_once")]
        indexes = [models.Index(fields=["bulk", "status"], name="bulk_item_status")]


class Trigger(_ScriptBound):
    class Kind(models.TextChoices):
        CWMP_EVENT = "cwmp_event", "CWMP event"
        NEW_DEVICE = "new_device", "new device"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    event = models.CharField(
        max_length=64, blank=True, default="", help_text='CWMP event code ("1", "1 BOOT"); "" = all'
    )
    device_filter = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    # Events from this moment on fire the trigger (set again when re-enabled
    # or edited: the durable consumer is then a new one).
    active_since = models.DateTimeField(default=timezone.now)
    fired = models.PositiveBigIntegerField(default=0)
    last_fired = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"trigger {self.name} ({self.kind})"


def new_listener_key() -> str:
    return f"deployed-{uuid.uuid4().hex[:16]}"


class Deployment(_ScriptBound):
    """A listening script kept running on a pinned version."""

    class Desired(models.TextChoices):
        RUNNING = "running"
        STOPPED = "stopped"

    desired = models.CharField(max_length=8, choices=Desired.choices, default=Desired.RUNNING)
    current_run_id = models.UUIDField(null=True, blank=True)
    restarts = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0, help_text="ends in a row, for back-off")
    last_started = models.DateTimeField(null=True, blank=True)
    start_after = models.DateTimeField(null=True, blank=True, help_text="back-off after an end")
    last_end = models.CharField(max_length=500, blank=True, default="")
    # Names the event consumers of its runs; a new key on each start from
    # "stopped", so events that came while it was stopped are not replayed.
    listener_key = models.CharField(max_length=64, default=new_listener_key)
    # Events its listener callbacks started on (over all its runs), and the last few.
    events = models.PositiveBigIntegerField(default=0)
    last_events = models.JSONField(default=list, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"deployment {self.name}"


class RolloutPolicy(models.Model):
    """What an Admin decides for every bulk run: above this many devices, a second
    person (not the one who created it) approves it before it starts. One row."""

    SINGLETON_PK = 1

    approval_above = models.PositiveIntegerField(null=True, blank=True)  # None: never
    updated = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    def __str__(self) -> str:
        return "rollout policy"

    @classmethod
    def load(cls) -> RolloutPolicy:
        row, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return row
