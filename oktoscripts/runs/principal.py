"""Who a run acts for (its principal), and what that principal may do.

A run acts for the user who started it; a run an automation started acts for
the user who last configured the automation (``configured_by``). Lua bindings
that change the device registry or its secrets ask the principal for the
same Django permission the REST API asks of a request
(oktoscripts/permissions.py), so no role can do in a script what it cannot
do over REST.

The principal reaches the worker in the Run row (``user``, ``started_by``,
``bounded_by_author``), which only the platform's own code writes after it
has authenticated the user; the request on the queue carries nothing but the
run id, and a script reaches neither the database nor its own context.

Permissions are read from the database at each guarded call, not when the run
starts: a deployed listener whose user is deactivated or loses a role stops
being allowed at once.

A run with no user is trusted as the machine's operator only when the command
line started it (``runscript``: whoever can run it can read the database and
the secret key anyway); any other run without a user (its user was deleted)
may do nothing that is guarded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError, close_old_connections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """``kind``: "operator" (the machine's operator: may do everything),
    "user" (``user_id``), or "nobody" (may do nothing guarded).

    ``author_of_version``: the code that runs is that ScriptVersion, picked as
    "the latest saved" by an automation after its user configured it, so
    whoever saved it may not be the principal: its author must hold a
    permission too."""

    kind: str
    user_id: int | None = None
    author_of_version: int | None = None

    @classmethod
    def operator(cls) -> Principal:
        return cls("operator")

    @classmethod
    def nobody(cls) -> Principal:
        return cls("nobody")

    @classmethod
    def user(cls, user_id: int, author_of_version: int | None = None) -> Principal:
        return cls("user", user_id, author_of_version)

    @classmethod
    def of_run(
        cls,
        user_id: int | None,
        started_by: str,
        bounded_by_author: bool = False,
        script_version_id: int | None = None,
    ) -> Principal:
        """The principal of a stored Run (the worker's view of it)."""
        if user_id is None:
            return cls.operator() if started_by == "cli" else cls.nobody()
        return cls.user(user_id, script_version_id if bounded_by_author else None)

    def refusal(self, permission: str, *, author_too: bool = True) -> str | None:
        """None when the principal holds ``permission``, else why not, in a
        sentence for the script's author. Reads the database (sync; raises
        DatabaseError when it cannot)."""
        if self.kind == "operator":
            return None
        if self.kind != "user" or self.user_id is None:
            return (
                f"this run acts for no user (the user who started or configured it "
                f"was deleted), and needs the permission '{permission}'"
            )
        return self._user_refusal(permission, author_too)

    def binding_refusal(self, permission: str) -> str | None:
        """``refusal`` from a Lua thread (a guarded binding): a database error
        refuses the call, and the thread keeps no database connection between
        calls, so a restarted database is no problem."""
        try:
            return self.refusal(permission)
        except DatabaseError as exc:
            log.warning("permission check of user %s failed: %s", self.user_id, exc)
            return f"the permission '{permission}' could not be checked: {exc}"
        finally:
            if self.kind == "user":
                close_old_connections()

    def _user_refusal(self, permission: str, author_too: bool) -> str | None:
        from django.contrib.auth import get_user_model

        users = get_user_model().objects
        user = users.filter(pk=self.user_id).first()
        problem = _lacks(user, permission, f"user #{self.user_id}")
        if problem is not None:
            return f"{problem}; the run acts for this user"
        if not author_too or self.author_of_version is None:
            return None
        version = (
            _script_versions()
            .select_related("script", "author")
            .filter(pk=self.author_of_version)
            .first()
        )
        if version is None or version.author_id == user.pk:
            return None
        problem = _lacks(version.author, permission, "a deleted user")
        if problem is None:
            return None
        return (
            f"{problem}; it saved the code that runs (version {version.number} of "
            f"'{version.script.name}'), which this automation runs as 'the latest saved "
            f"version': pin a version, or have it saved by someone who holds the permission"
        )


def _script_versions():  # noqa: ANN202 - a manager of oktoscripts.scripts.models.ScriptVersion
    """The versions a Run refers to, reached through the Run's own foreign key: the
    scripts app sits above runs (it starts them), so runs never imports it."""
    from oktoscripts.runs.models import Run

    return Run._meta.get_field("script_version").related_model.objects


def _lacks(user: object, permission: str, missing: str) -> str | None:
    """Why ``user`` does not hold ``permission`` (None when it does)."""
    from oktoscripts.roles import role_of

    if user is None:
        return f"{missing} does not hold the permission '{permission}'"
    name = user.get_username()
    if not user.is_active:
        return f"user '{name}' is deactivated"
    if user.has_perm(permission):
        return None
    return f"user '{name}' (role {role_of(user)}) does not hold the permission '{permission}'"
