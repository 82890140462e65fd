"""The platform's records of scripts: scripts and their immutable versions, the
platform settings (default run limits), and the audit log.

The tables keep the names they had when these models lived in the ``ide`` app
(``db_table``), so an installation moves here without copying data
(migration 0001 of this app only changes Django's idea of who owns them).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone

from oktoscripts.lua.runtime import DEFAULT_RUNTIME


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


class Script(models.Model):
    """A named Lua script. Deleting sets ``deleted``: its versions and runs stay."""

    RUNTIMES = [("lua51", "Lua 5.1"), ("luajit", "LuaJIT")]

    name = models.CharField(max_length=200, unique=True)
    folder = models.CharField(max_length=200, blank=True, default="", db_index=True)
    tags = models.CharField(max_length=400, blank=True, default="", help_text="space-separated")
    description = models.CharField(max_length=500, blank=True, default="")
    runtime = models.CharField(max_length=10, choices=RUNTIMES, default=DEFAULT_RUNTIME)
    # Overrides of the platform's default run limits (oktoscripts/lua/limits.py names):
    # {"wall_seconds": 30, "memory_bytes": ..., "instructions": ...}; {} = defaults.
    limits = models.JSONField(default=dict, blank=True)
    deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The newest version, kept here so lists and the editor need no aggregate query.
    latest = models.ForeignKey(
        "ScriptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["folder", "name"]
        indexes = [models.Index(fields=["deleted", "folder", "name"])]
        default_permissions = ()
        db_table = "ide_script"
        # The role capabilities (oktoscripts/roles.py) hang on this model.
        permissions = [
            ("read", "Read scripts, runs and devices"),
            ("edit_scripts", "Create and edit scripts"),
            ("run_scripts", "Run and cancel scripts"),
            ("administer", "Manage users, roles, device credentials and settings"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tag_list(self) -> list[str]:
        return self.tags.split()


class ImmutableError(Exception):
    pass


class ScriptVersion(models.Model):
    """One saved state of a script. Never changed or deleted once written."""

    script = models.ForeignKey(Script, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    content = models.TextField()
    sha256 = models.CharField(max_length=64)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=500, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    # The arguments this version takes: [{"name", "type", "default", "description"}]
    # (oktoscripts/scripts/arguments.py). Part of the version: they change by saving one.
    arguments = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["script", "-number"]
        db_table = "ide_scriptversion"
        constraints = [
            models.UniqueConstraint(fields=["script", "number"], name="version_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.script.name} v{self.number}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ImmutableError("a script version cannot be changed")
        self.sha256 = content_hash(self.content)
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> None:
        raise ImmutableError("a script version cannot be deleted")


class ArgumentPreset(models.Model):
    """Named argument values of a script ("lab", "all of region 3"): the
    script's, not a version's, so they outlive saves. Editors save them,
    whoever may run the script uses them."""

    MAX_PER_SCRIPT = 100

    script = models.ForeignKey(Script, on_delete=models.CASCADE, related_name="presets")
    name = models.CharField(max_length=100)
    args = models.JSONField(default=dict)
    updated = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["script", "name"]
        constraints = [
            models.UniqueConstraint(fields=["script", "name"], name="preset_script_name")
        ]

    def __str__(self) -> str:
        return f"{self.script_id}:{self.name}"


class AuditEvent(models.Model):
    """Who did what, when, to what."""

    created = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=60, db_index=True)
    target = models.CharField(max_length=300, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        db_table = "ide_auditevent"

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.target}"


class PlatformSettings(models.Model):
    """The platform-wide settings an Admin changes on the Settings page: one row (pk 1).

    A limit left empty (NULL) means the built-in default of oktoscripts/lua/limits.py
    (itself replaceable by OKTOSCRIPTS_LIMIT_* environment variables).
    """

    SINGLETON_PK = 1

    instructions = models.BigIntegerField(null=True, blank=True)
    memory_bytes = models.BigIntegerField(null=True, blank=True)
    wall_seconds = models.FloatField(null=True, blank=True)
    output_bytes = models.BigIntegerField(null=True, blank=True)
    default_runtime = models.CharField(
        max_length=10, choices=Script.RUNTIMES, default=DEFAULT_RUNTIME
    )
    updated = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "ide_platformsettings"
        verbose_name = "platform settings"
        verbose_name_plural = "platform settings"

    def __str__(self) -> str:
        return "platform settings"

    @classmethod
    def load(cls) -> PlatformSettings:
        """The one settings row, created with every value at its default on first use."""
        row, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return row


class Fixture(models.Model):
    """A test of a script: "on this recording of device calls, with these
    arguments, the script must end with this status and return this result"
    (and, when ``expected_output`` is set, print these lines). Running it
    replays the recording against a version of the script
    (``oktoscripts/scripts/fixtures.py``). The recording is copied here, so the
    fixture outlives the run it was saved from."""

    script = models.ForeignKey(Script, on_delete=models.CASCADE, related_name="fixtures")
    name = models.CharField(max_length=100)
    # {"calls": [{"protocol", "target", "line", "request", "answer", ...}], "truncated"}:
    # a run's metrics["recording"] (oktoscripts/runs/gates.py).
    recording = models.JSONField(default=dict)
    args = models.JSONField(default=dict, blank=True)
    expected_status = models.CharField(max_length=16, default="succeeded")
    expected_result = models.JSONField(null=True, blank=True)
    # The run's printed and logged lines in order ("text", "[warn] text"); None: not checked.
    expected_output = models.JSONField(null=True, blank=True)
    source_run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_version = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["script", "name"]
        constraints = [
            models.UniqueConstraint(fields=["script", "name"], name="fixture_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.script.name}: {self.name}"
