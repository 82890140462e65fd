"""REST endpoints for a script's argument presets and your last arguments.

Presets are the script's (they outlive versions): anyone who reads the
script sees them, Editors save and delete them. Your last arguments are
yours: kept when you start a run of the script, read back by the editor.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Router, Status

from ide.api.auth import ApiError, needs
from ide.api.schemas import LastArgs, Preset, PresetList, PresetSave
from ide.models import LastArguments
from oktoscripts.roles import Capability
from oktoscripts.scripts import audit
from oktoscripts.scripts.arguments import ArgumentError, clean_args
from oktoscripts.scripts.models import ArgumentPreset, Script

router = Router(tags=["arguments"])
READ, EDIT, RUN = needs(Capability.READ), needs(Capability.EDIT), needs(Capability.RUN)


def _name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > 100:
        raise ApiError("a preset name is 1 to 100 characters")
    return name


def _script(script_id: int) -> Script:
    return get_object_or_404(Script, pk=script_id)


def preset_json(p: ArgumentPreset) -> dict:
    return {
        "name": p.name,
        "args": p.args,
        "updated": p.updated.isoformat(),
        "updated_by": p.updated_by.username if p.updated_by else None,
    }


def presets_of(script_id: int) -> list[dict]:
    rows = ArgumentPreset.objects.filter(script_id=script_id).select_related("updated_by")
    return [preset_json(p) for p in rows]


@router.get(
    "/scripts/{int:script_id}/presets",
    response=PresetList,
    summary="The named argument presets of a script",
    **READ,
)
def list_presets(request: HttpRequest, script_id: int) -> dict:
    return {"presets": presets_of(_script(script_id).pk)}


@router.put(
    "/scripts/{int:script_id}/presets/{name}",
    response={200: Preset, 201: Preset},
    summary="Save a named argument preset of a script (creates or replaces)",
    **EDIT,
)
def save_preset(request: HttpRequest, script_id: int, name: str, body: PresetSave) -> Status:
    script = _script(script_id)
    if script.deleted:
        raise ApiError("this script is deleted; restore it first", 409)
    name = _name(name)
    try:
        args = clean_args(body.args)
    except ArgumentError as exc:
        raise ApiError(str(exc)) from None
    with transaction.atomic():
        locked = Script.objects.select_for_update().get(pk=script.pk)  # one count at a time
        known = ArgumentPreset.objects.filter(script=locked, name=name).exists()
        if not known and locked.presets.count() >= ArgumentPreset.MAX_PER_SCRIPT:
            raise ApiError(f"a script has at most {ArgumentPreset.MAX_PER_SCRIPT} presets", 409)
        preset, created = ArgumentPreset.objects.update_or_create(
            script=locked,
            name=name,
            defaults={"args": args, "updated": timezone.now(), "updated_by": request.user},
        )
    audit.record(request.user, "script.preset.save", script.name, preset=name)
    return Status(201 if created else 200, preset_json(preset))


@router.delete(
    "/scripts/{int:script_id}/presets/{name}",
    response={204: None},
    summary="Delete a named argument preset of a script",
    **EDIT,
)
def delete_preset(request: HttpRequest, script_id: int, name: str) -> Status:
    script = _script(script_id)
    name = _name(name)
    deleted, _ = ArgumentPreset.objects.filter(script=script, name=name).delete()
    if not deleted:
        raise ApiError("no such preset", 404)
    audit.record(request.user, "script.preset.delete", script.name, preset=name)
    return Status(204, None)


@router.get(
    "/scripts/{int:script_id}/last-arguments",
    response=LastArgs,
    summary="Your arguments of your last run of a script",
    **RUN,
)
def last_arguments(request: HttpRequest, script_id: int) -> dict:
    return {"args": LastArguments.of(request.user, _script(script_id).pk)}
