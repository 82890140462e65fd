"""Who may do what: the one table of roles and capabilities.

Every page, REST endpoint and WebSocket asks ``can(user, capability)``; the
roles are Django auth groups whose permissions are the capabilities listed
here (created and kept in sync by a data migration). A superuser holds every
capability, so the ``admin`` account created by ``up`` is an Admin.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

# The app whose Script model carries the capability permissions.
CAPABILITY_APP = "scripts"


class Capability(StrEnum):
    """A permission codename of the ``scripts`` app (``scripts.<value>``; they hang
    on its Script model, and were ``ide.<value>`` before that app existed)."""

    READ = "read"  # scripts, versions, runs, devices, API reference
    EDIT = "edit_scripts"  # create, save, rename, delete, restore scripts
    RUN = "run_scripts"  # start, re-run and cancel runs
    ADMIN = "administer"  # users, roles, device credentials, settings, audit log


CAPABILITY_NAMES = {
    Capability.READ: "Read scripts, runs and devices",
    Capability.EDIT: "Create and edit scripts",
    Capability.RUN: "Run and cancel scripts",
    Capability.ADMIN: "Manage users, roles, device credentials and settings",
}

ROLES: dict[str, tuple[Capability, ...]] = {
    "Viewer": (Capability.READ,),
    "Author": (Capability.READ, Capability.EDIT),
    "Operator": (Capability.READ, Capability.RUN),
    "Admin": (Capability.READ, Capability.EDIT, Capability.RUN, Capability.ADMIN),
}


# Permissions of other apps that roles carry (app_label, model, codename, name).
DEVICE_DELETE = ("devices", "device", "delete_device", "Can delete devices")
DEVICE_ALIAS = ("devices", "device", "change_device_alias", "Can rename devices (alias)")
ROLE_EXTRA_PERMISSIONS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "Viewer": (),
    "Author": (),
    "Operator": (DEVICE_ALIAS,),
    "Admin": (DEVICE_ALIAS, DEVICE_DELETE),
}


def can(user: Any, capability: Capability) -> bool:
    """Whether an (authenticated, active) user holds a capability."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.has_perm(f"{CAPABILITY_APP}.{capability.value}")


def capabilities(user: Any) -> dict[str, bool]:
    """The user's capabilities by name, for templates and the UI."""
    return {cap.name.lower(): can(user, cap) for cap in Capability}


# Which role wins when a user is found in several (display, and single sign-on
# where a person's directory groups map to more than one role).
PRECEDENCE = ("Admin", "Operator", "Author", "Viewer")


def role_of(user: Any) -> str:
    """The highest role a user holds, for display."""
    if user.is_superuser:
        return "Admin"
    names = set(user.groups.values_list("name", flat=True))
    for role in PRECEDENCE:
        if role in names:
            return role
    return "None"


def assign_role(user: Any, role: str | None) -> None:
    """Give a (saved) user exactly one role, or none (``None``); other groups stay."""
    # Imported here: settings read this module (role names) before apps are ready.
    from django.contrib.auth.models import Group
    from django.db import transaction

    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name__in=ROLES))
        if role is not None:
            user.groups.add(Group.objects.get(name=role))


def sync_groups(apps: Any) -> None:
    """Create the capability permissions and the role groups (idempotent).
    Called by a data migration with the historical app registry."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label=CAPABILITY_APP, model="script")
    perms = {}
    for cap in Capability:
        perm, _ = Permission.objects.get_or_create(
            codename=cap.value,
            content_type=content_type,
            defaults={"name": CAPABILITY_NAMES[cap]},
        )
        perms[cap] = perm
    for role, caps in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        extra = []
        for app_label, model, codename, name in ROLE_EXTRA_PERMISSIONS[role]:
            ct, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
            perm, _ = Permission.objects.get_or_create(
                codename=codename, content_type=ct, defaults={"name": name}
            )
            extra.append(perm)
        group.permissions.set([perms[cap] for cap in caps] + extra)
