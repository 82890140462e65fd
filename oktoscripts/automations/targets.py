"""What an automation runs: the exact script version, and starting a run of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client

from oktoscripts.scripts.models import Script, ScriptVersion


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
) -> str:
    """Queue a run of the target, acting for ``user`` (``Automation.acting_for()``);
    returns its run id. The run gets the script's limits within the platform's
    (as a run from the IDE does). Raises RunQueueError, ValueError, or
    IntegrityError when ``run_id`` was used already."""
    from asgiref.sync import sync_to_async

    from oktoscripts.runs.submit import asubmit_run
    from oktoscripts.scripts.platform_settings import effective_limits

    run = await asubmit_run(
        target.version.content,
        script_name=target.script.name,
        args=args,
        runtime=target.script.runtime,
        limits=await sync_to_async(effective_limits)(target.script.limits),
        started_by=started_by,
        user=user,
        bounded_by_author=bounded_by_author,
        script_version_id=target.version.pk,
        trigger=trigger[:255],
        run_id=run_id or str(uuid.uuid4()),
        nc=nc,
        listener_key=listener_key,
    )
    return str(run.id)
