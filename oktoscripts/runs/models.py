"""A run of a script and the lines it printed."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Run(models.Model):
    class StartedBy(models.TextChoices):
        USER = "user"
        SCHEDULE = "schedule"
        EVENT = "event"
        API = "api"
        CLI = "cli"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        LISTENING = "listening"  # main chunk done, listeners still handling events
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        LIMIT_EXCEEDED = "limit_exceeded"
        LOST = "lost"  # its worker stopped heartbeating

    ACTIVE = (Status.RUNNING, Status.LISTENING)
    FINAL = (
        Status.SUCCEEDED,
        Status.FAILED,
        Status.CANCELLED,
        Status.LIMIT_EXCEEDED,
        Status.LOST,
    )

    class Mode(models.TextChoices):
        RUN = "run"
        PLAN = "plan"
        APPLY = "apply"
        REPLAY = "replay"

    class Runtime(models.TextChoices):
        LUA51 = "lua51"
        LUAJIT = "luajit"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    script_name = models.CharField(max_length=255)
    code = models.TextField(help_text="the exact code that ran")
    # The immutable script version that ran (None for ad-hoc runs such as
    # ``runscript --remote``); ``code`` keeps the exact text either way.
    script_version = models.ForeignKey(
        "scripts.ScriptVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
    )
    started_by = models.CharField(max_length=16, choices=StartedBy.choices)
    trigger = models.CharField(
        max_length=255, blank=True, default="", help_text="which schedule or event, in words"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
    )
    # Set by an automation that ran "the latest saved version": someone other
    # than ``user`` may have saved it, so its author's permissions bound the run
    # too (oktoscripts/runs/principal.py).
    bounded_by_author = models.BooleanField(default=False)
    args = models.JSONField(default=dict, blank=True)
    # Set on the runs of a deployed listener: the same in each of its runs, so a
    # replacement run takes over the event consumers of the run it replaces.
    listener_key = models.CharField(max_length=64, blank=True, default="")
    # Set on a run that may be run again after its worker died (a bulk run's
    # item): the same in each attempt, it names the run's device calls, so an
    # attempt gets the answers of the calls an earlier one made instead of
    # making them again (oktoscripts/cwmp/client.py).
    replay_key = models.CharField(max_length=64, blank=True, default="")
    # A debug run: its worker runs it with the debugger (oktoscripts/lua/debugger.py).
    debug = models.BooleanField(default=False)
    # "run": device calls go out and are recorded (metrics["recording"]); "plan":
    # device writes are intercepted and planned (oktoscripts/runs/gates.py; the plan
    # is metrics["plan"]); "apply": the run applies the plan of ``plan_of``.
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.RUN)
    plan_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="applications"
    )
    # "replay": the run answers its device calls from the recording of ``replay_of``
    # (metrics["recording"] of an ordinary run), reaching no device.
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    # A replay that checks a script's test fixture: its device calls are answered
    # from the fixture's recording (oktoscripts/scripts/fixtures.py).
    fixture = models.ForeignKey(
        "scripts.Fixture", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    runtime = models.CharField(max_length=8, choices=Runtime.choices, default=Runtime.LUAJIT)
    limits = models.JSONField(default=dict, blank=True, help_text="overrides of the default limits")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=64, blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    # {"message", "line", "traceback": [{"source", "line", "function"}], "kind", "limit"}
    error = models.JSONField(null=True, blank=True)
    # {"duration_s", "instructions", "peak_memory_bytes", "binding_calls", "device_calls": [...],
    #  "plan": {...} of a run in plan mode}
    metrics = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["-created"], name="run_created"),
            models.Index(fields=["status", "-created"], name="run_status_created"),
            models.Index(fields=["script_name", "-created"], name="run_script_created"),
            models.Index(fields=["worker_id", "status"], name="run_worker_status"),
            # Only the runs that may be run again have one.
            models.Index(
                fields=["replay_key"], condition=~models.Q(replay_key=""), name="run_replay_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.script_name} {self.id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class RunOutputLine(models.Model):
    class Stream(models.TextChoices):
        STDOUT = "stdout"  # print
        LOG = "log"  # log(level, ...)
        CALL = "call"  # a device call and its latency
        SYSTEM = "system"  # messages of the platform about the run

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="output")
    seq = models.PositiveIntegerField(help_text="order within the run, from 1")
    stream = models.CharField(max_length=8, choices=Stream.choices, default=Stream.STDOUT)
    text = models.TextField()
    level = models.CharField(max_length=16, null=True, blank=True)
    time = models.DateTimeField()

    class Meta:
        ordering = ["run_id", "seq"]  # run_id: no join to the runs table
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="run_output_run_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.seq} {self.text[:60]}"
