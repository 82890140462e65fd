"""JSON shapes of the REST API's records."""

from __future__ import annotations

from typing import Any

from oktoscripts.runs import live
from oktoscripts.scripts.models import Script, ScriptVersion


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def script_json(s: Script) -> dict[str, Any]:
    latest = s.latest
    return {
        "id": s.pk,
        "name": s.name,
        "folder": s.folder,
        "tags": s.tag_list,
        "description": s.description,
        "runtime": s.runtime,
        "limits": s.limits,
        "deleted": s.deleted,
        "created": _iso(s.created),
        "updated": _iso(s.updated),
        "version": latest.number if latest else None,
    }


def version_json(v: ScriptVersion, content: bool = True) -> dict[str, Any]:
    data = {
        "script_id": v.script_id,
        "number": v.number,
        "sha256": v.sha256,
        "author": v.author.username if v.author else None,
        "message": v.message,
        "created": _iso(v.created),
        "arguments": list(v.arguments or []),
    }
    if content:
        data["content"] = v.content
    return data


def run_json(r: Any) -> dict[str, Any]:
    return {
        "id": str(r.pk),
        "script_name": r.script_name,
        "script_version_id": r.script_version_id,
        "version": getattr(r, "version_number", None),
        "status": r.status,
        "started_by": r.started_by,
        "trigger": r.trigger,
        "user": r.user.username if r.user_id and r.user else None,
        "args": r.args,
        "runtime": r.runtime,
        "created": _iso(r.created),
        "started": _iso(r.started),
        "finished": _iso(r.finished),
        "error": r.error,
        "metrics": r.metrics,
        "mode": r.mode,
        "plan_of": str(r.plan_of_id) if r.plan_of_id else None,
    }


line_json = live.stored_line  # a stored line has the shape of a live one
