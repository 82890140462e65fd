"""Recording audit events: one call per thing worth knowing who did."""

from __future__ import annotations

from typing import Any

from oktoscripts.scripts.models import AuditEvent


def record(actor: Any, action: str, target: str = "", **details: Any) -> AuditEvent:
    """Write an audit event; ``actor`` is a user or a name ("schedule", "api")."""
    if hasattr(actor, "get_username"):
        user, name = actor, actor.get_username()
    else:
        user, name = None, str(actor or "system")
    return AuditEvent.objects.create(
        actor=user, actor_name=name, action=action, target=target, details=details
    )
