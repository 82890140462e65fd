"""What can be done to scripts, in one place for pages and the REST API alike.

Each change is a transaction and leaves an audit event.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from oktoscripts.scripts import audit, platform_settings
from oktoscripts.scripts.arguments import ArgumentError, clean_declarations
from oktoscripts.scripts.models import Script, ScriptVersion, content_hash

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,199}$")
MAX_CONTENT = 1_000_000


class ScriptError(ValueError):
    """A refused change; ``str()`` is the message for the user."""


def clean_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ScriptError(
            "A script name is 1-200 characters: letters, digits, space, '_', '-', '.', "
            "starting with a letter or digit."
        )
    return name


def clean_folder(folder: str) -> str:
    folder = "/".join(part.strip() for part in (folder or "").split("/") if part.strip())
    if len(folder) > 200:
        raise ScriptError("A folder path is at most 200 characters.")
    return folder


LIMIT_NAMES = ("wall_seconds", "memory_bytes", "instructions", "output_bytes")


def clean_limits(limits: dict[str, Any]) -> dict[str, Any]:
    """Per-script limit overrides, checked by the engine's own rules."""
    from oktoscripts.lua.limits import Limits

    if not isinstance(limits, dict):
        raise ScriptError("Limits are an object of name: number.")
    cleaned = {k: v for k, v in limits.items() if v not in (None, "")}
    unknown = set(cleaned) - set(LIMIT_NAMES)
    if unknown:
        raise ScriptError(f"Unknown limit {sorted(unknown)[0]!r} (use {', '.join(LIMIT_NAMES)}).")
    try:
        Limits.with_overrides(cleaned)
    except (TypeError, ValueError) as exc:
        raise ScriptError(f"Bad limit: {exc}") from None
    return cleaned


def check_limit_rights(user: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    """A script may lower the platform's limits (the Settings page); only an Admin
    may raise them, and no one above the hard caps. Only changed values are
    checked: an Author editing a script an Admin raised keeps its limits."""
    from oktoscripts.roles import Capability, can
    from oktoscripts.runs.caps import HARD_CAPS

    platform = platform_settings.platform_limits()
    for name, value in new.items():
        if value == old.get(name):
            continue
        field = platform_settings.FIELDS_BY_NAME[name]
        cap, allowed = getattr(HARD_CAPS, name), getattr(platform, name)
        if value > allowed and not can(user, Capability.ADMIN):
            raise ScriptError(
                f"{field.label} limit: {field.describe(value)} is above the platform's limit of "
                f"{field.describe(allowed)}; only an Admin may raise a script's limits (up to "
                f"{field.describe(cap)})."
            )
        if value > cap:
            raise ScriptError(
                f"{field.label} limit: {field.describe(value)} is above the hard "
                f"cap of {field.describe(cap)}."
            )


def clean_tags(tags: str | list[str]) -> str:
    items = tags.replace(",", " ").split() if isinstance(tags, str) else list(tags)
    return " ".join(dict.fromkeys(t.strip().lower() for t in items if t.strip()))[:400]


@transaction.atomic
def create_script(
    user: Any,
    name: str,
    content: str | None = "",
    folder: str = "",
    tags: str = "",
    description: str = "",
    message: str = "Created",
) -> Script:
    name = clean_name(name)
    if Script.objects.filter(name=name).exists():
        raise ScriptError(f"A script named {name!r} already exists.")
    try:
        with transaction.atomic():
            script = Script.objects.create(
                name=name,
                folder=clean_folder(folder),
                tags=clean_tags(tags),
                description=description[:500],
                created_by=user,
                runtime=platform_settings.default_runtime(),
            )
    except IntegrityError:
        raise ScriptError(f"A script named {name!r} already exists.") from None
    audit.record(user, "script.create", name)
    if content is not None:  # None: no version until the first save
        script.latest = save_version(user, script, content, message)
    return script


@transaction.atomic
def save_version(
    user: Any,
    script: Script,
    content: str,
    message: str = "",
    arguments: list[dict[str, Any]] | None = None,
) -> ScriptVersion:
    """A new immutable version; saving unchanged content (and arguments) returns
    the current one. ``arguments``: the declarations of the new version (None:
    the latest version's, unchanged)."""
    if len(content) > MAX_CONTENT:
        raise ScriptError(f"A script is at most {MAX_CONTENT:,} characters.")
    try:
        declared = clean_declarations(arguments) if arguments is not None else None
    except ArgumentError as exc:
        raise ScriptError(str(exc)) from None
    script = Script.objects.select_for_update().get(pk=script.pk)
    if script.deleted:
        raise ScriptError("This script is deleted; restore it first.")
    latest = script.latest
    if declared is None:
        declared = list(latest.arguments or []) if latest is not None else []
    if (
        latest is not None
        and latest.sha256 == content_hash(content)
        and (latest.arguments or []) == declared
        and not message
    ):
        return latest
    version = ScriptVersion.objects.create(
        script=script,
        number=(latest.number + 1) if latest else 1,
        content=content,
        author=user,
        message=(message or "").strip()[:500],
        arguments=declared,
    )
    Script.objects.filter(pk=script.pk).update(latest=version, updated=timezone.now())
    audit.record(user, "script.save", script.name, version=version.number, sha256=version.sha256)
    return version


def restore_version(user: Any, script: Script, number: int) -> ScriptVersion:
    old = ScriptVersion.objects.get(script=script, number=number)
    return save_version(
        user, script, old.content, f"Restored version {number}", list(old.arguments or [])
    )


@transaction.atomic
def update_script(
    user: Any,
    script: Script,
    *,
    name: str | None = None,
    folder: str | None = None,
    tags: str | None = None,
    description: str | None = None,
    runtime: str | None = None,
    limits: dict[str, Any] | None = None,
) -> Script:
    changes: dict[str, Any] = {}
    if limits is not None and clean_limits(limits) != script.limits:
        check_limit_rights(user, script.limits or {}, clean_limits(limits))
        changes["limits"] = (script.limits, clean_limits(limits))
        script.limits = clean_limits(limits)
    if runtime is not None and runtime != script.runtime:
        if runtime not in dict(Script.RUNTIMES):
            raise ScriptError(f"Unknown runtime {runtime!r} (use lua51 or luajit).")
        changes["runtime"] = (script.runtime, runtime)
        script.runtime = runtime
    if name is not None and clean_name(name) != script.name:
        new = clean_name(name)
        if Script.objects.filter(name=new).exclude(pk=script.pk).exists():
            raise ScriptError(f"A script named {new!r} already exists.")
        changes["name"] = (script.name, new)
        script.name = new
    if folder is not None and clean_folder(folder) != script.folder:
        changes["folder"] = (script.folder, clean_folder(folder))
        script.folder = clean_folder(folder)
    if tags is not None and clean_tags(tags) != script.tags:
        changes["tags"] = (script.tags, clean_tags(tags))
        script.tags = clean_tags(tags)
    if description is not None and description != script.description:
        script.description = description[:500]
        changes["description"] = True
    if changes:
        script.updated = timezone.now()
        # Only the changed columns: a stale instance must not undo a newer save.
        script.save(update_fields=[*changes, "updated"])  # changes: keyed by field name
        action = "script.rename" if "name" in changes else "script.update"
        audit.record(user, action, script.name, changes=changes)
    return script


def delete_script(user: Any, script: Script) -> None:
    Script.objects.filter(pk=script.pk).update(deleted=True, deleted_at=timezone.now())
    audit.record(user, "script.delete", script.name)


def undelete_script(user: Any, script: Script) -> None:
    Script.objects.filter(pk=script.pk).update(deleted=False, deleted_at=None)
    audit.record(user, "script.restore", script.name)
