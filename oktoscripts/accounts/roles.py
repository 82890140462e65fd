"""A person's groups at the provider or directory -> their one role here.

The provider is the source of truth: the role is set again at every sign-in,
so a person moved to another group has the new role from their next sign-in
on, and one in no mapped group is refused and keeps no role at all (their API
tokens, automations and running scripts lose it too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from oktoscripts.accounts.signin import Refused
from oktoscripts.roles import PRECEDENCE, assign_role, role_of
from oktoscripts.scripts import audit


def role_for(groups: Iterable[str], mapping: dict[str, str]) -> str | None:
    """The highest role any of ``groups`` maps to (case-insensitive), or None."""
    granted = {mapping.get(str(group).casefold()) for group in groups}
    return next((role for role in PRECEDENCE if role in granted), None)


def settle(user: Any, groups: Iterable[str], mapping: dict[str, str], source: str) -> str:
    """Give ``user`` the role their groups map to and return it; a change is
    audited. No mapped group: the user loses any role and Refused is raised."""
    groups = sorted(str(g) for g in groups)
    role = role_for(groups, mapping)
    before = role_of(user)
    if before != (role or "None"):
        assign_role(user, role)
        audit.record(
            source,
            "role.change",
            user.get_username(),
            before=before,
            after=role or "None",
            groups=groups,
        )
    if role is None:
        raise no_role(groups, who=user)
    return role


def no_role(groups: list[str], who: Any) -> Refused:
    return Refused(
        f"none of your groups ({', '.join(groups) or 'none'}) is given a role "
        "here: ask an administrator",
        who=who,
    )
