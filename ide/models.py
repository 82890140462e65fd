"""The IDE's own records: REST API tokens, and what the editor keeps per person
(breakpoints, the arguments of the last run)."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from oktoscripts.scripts.models import content_hash


class ApiToken(models.Model):
    """A REST API token. Only its SHA-256 is stored; the token is shown once."""

    PREFIX = "okt_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)  # first characters, to tell tokens apart
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, user: object, name: str) -> tuple[ApiToken, str]:
        """A new token for ``user``; returns the record and the clear token (shown once)."""
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=content_hash(raw), hint=raw[:10])
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> object | None:
        """The active user owning the token, or None."""
        if not raw.startswith(cls.PREFIX):
            return None
        token = cls.objects.select_related("user").filter(key_hash=content_hash(raw)).first()
        if token is None or not token.user.is_active:
            return None
        now = timezone.now()
        if token.last_used is None or (now - token.last_used).total_seconds() > 60:
            cls.objects.filter(pk=token.pk).update(last_used=now)
        return token.user


class Breakpoints(models.Model):
    """One user's debugger breakpoints in one script (the editor keeps them
    moving with edits above them and saves them here)."""

    MAX = 500  # breakpoints per user and script

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="breakpoints"
    )
    script = models.ForeignKey("scripts.Script", on_delete=models.CASCADE, related_name="+")
    # [{"line": n, "condition": "...", "hit": n, "log": "..."}], as DebugSession takes them.
    points = models.JSONField(default=list)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "script"], name="breakpoints_user_script")
        ]

    @classmethod
    def of(cls, user: object, script_id: int) -> list:
        row = cls.objects.filter(user=user, script_id=script_id).only("points").first()
        return row.points if row is not None else []


class LastArguments(models.Model):
    """The arguments one person last started one script with (the editor
    offers them again, on any browser)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="last_arguments"
    )
    script = models.ForeignKey("scripts.Script", on_delete=models.CASCADE, related_name="+")
    # [[name, value], ...]: a list keeps the order they were given in (a JSON
    # object need not: PostgreSQL's jsonb sorts its keys).
    args = models.JSONField(default=list)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "script"], name="last_arguments_user_script")
        ]

    @classmethod
    def of(cls, user: object, script_id: int) -> dict:
        row = cls.objects.filter(user=user, script_id=script_id).only("args").first()
        return dict(row.args) if row is not None else {}

    @classmethod
    def remember(cls, user: object, script_id: int, args: dict) -> None:
        cls.objects.update_or_create(
            user=user,
            script_id=script_id,
            defaults={"args": [[k, v] for k, v in args.items()], "updated": timezone.now()},
        )
