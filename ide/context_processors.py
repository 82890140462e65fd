"""Template context every page needs: the user's capabilities and role."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from oktoscripts.roles import capabilities, role_of


def ide(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"can": capabilities(user), "role": role_of(user)}
