"""What an automation runs: the exact script version, and starting a run of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client

from oktoscripts.scripts.models import Script, ScriptVersion
from oktoscripts.scripts.start import Origin, Source, astart_run


class TargetError(ValueError):
    """The automation cannot run: its script is deleted or has no saved version."""


@dataclass(frozen=True)
class Target:
    """A resolved script version, ready to submit."""

    script: Script
    version: ScriptVersion


def resolve(script: Script, version: ScriptVersion | None) -> Target:
    """The pinned version, or the script's latest saved one. Sync (ORM)."""
    script = Script.objects.select_related("latest").get(pk=script.pk)
    if script.deleted:
        raise TargetError(f"script {script.name!r} is deleted")
    if version is None:
        version = script.latest
        if version is None:
            raise TargetError(f"script {script.name!r} has no saved version")
    elif version.script_id != script.pk:
        raise TargetError(f"version {version.pk} is not a version of script {script.name!r}")
    return Target(script, version)


def resolve_for(automation: Any) -> Target:
    return resolve(automation.script, automation.version)


def pin(script: Script, number: int | None) -> ScriptVersion | None:
    """The version ``number`` of a script (None stays None: "latest saved")."""
    if number is None:
        return None
    version = ScriptVersion.objects.filter(script=script, number=number).first()
    if version is None:
        raise TargetError(f"script {script.name!r} has no version {number}")
    return version


async def astart(
    target: Target,
    *,
    args: dict,
    started_by: str,
    trigger: str,
    nc: Client,
    user: Any = None,
    bounded_by_author: bool = False,
    run_id: str | None = None,
    listener_key: str = "",
    replay_key: str = "",
    mode: str = "run",
) -> str:
    """Queue a run of the target, acting for ``user`` (``Automation.acting_for()``),
    through the one action that starts runs (oktoscripts/scripts/start.py: the
    argument rule, the limits, the audit event); returns its run id. Raises
    RunQueueError, ValueError, or IntegrityError when ``run_id`` was used already."""
    run = await astart_run(
        Source.saved(target.version, target.script),
        user=user,
        args=args,
        origin=Origin(started_by, trigger, listener_key, replay_key, mode=mode),
        nc=nc,
        bounded_by_author=bounded_by_author,
        run_id=run_id,
    )
    return str(run.id)
