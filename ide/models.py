"""The IDE's own record: REST API tokens."""

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
