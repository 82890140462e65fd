"""The Settings page (Admins): platform-wide default run limits and runtime."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from ide.access import requires
from oktoscripts.lua.limits import Limits
from oktoscripts.roles import Capability
from oktoscripts.scripts import platform_settings as ps
from oktoscripts.scripts.models import AuditEvent

HISTORY = 10


def _limits_from_form(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The limit fields converted from the form's units to the engine's."""
    limits: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in ps.LIMIT_FIELDS:
        text = form.get(field.name, "").strip().replace(",", "").replace("_", "")
        if not text:
            limits[field.name] = None
            continue
        try:
            number = float(text)
        except ValueError:
            errors[field.name] = f"{field.label}: enter a number of {field.unit}, not {text!r}."
            continue
        limits[field.name] = number * field.scale
    return limits, errors


def _history() -> list[dict[str, Any]]:
    """The recent changes, each field as label: before → after in the form's units."""
    rows = []
    for event in AuditEvent.objects.filter(action="settings.change").order_by("-id")[:HISTORY]:
        changes = []
        for name, (before, after) in (event.details.get("changes") or {}).items():
            field = ps.FIELDS_BY_NAME.get(name)
            if field is None:
                changes.append(
                    {
                        "label": "Default runtime",
                        "before": ps.RUNTIMES.get(before, before),
                        "after": ps.RUNTIMES.get(after, after),
                    }
                )
                continue
            changes.append(
                {
                    "label": field.label,
                    "before": field.describe(before) if before is not None else "built-in",
                    "after": field.describe(after) if after is not None else "built-in",
                }
            )
        rows.append({"event": event, "changes": changes})
    return rows


def _render(
    request: HttpRequest,
    values: dict[str, str],
    runtime: str,
    errors: dict[str, str],
    status: int = 200,
) -> HttpResponse:
    row = ps.current()
    builtin = dataclasses.asdict(Limits.defaults())
    effective = dataclasses.asdict(ps.platform_limits(row))
    fields = [
        {
            "name": f.name,
            "label": f.label,
            "unit": f.unit,
            "value": values[f.name],
            "builtin": f.describe(builtin[f.name]),
            "effective": f.describe(effective[f.name]),
            "overridden": getattr(row, f.name) is not None,
            "error": errors.get(f.name, ""),
            "minimum": f.describe(f.minimum),
            "maximum": f.describe(f.maximum),
        }
        for f in ps.LIMIT_FIELDS
    ]
    return render(
        request,
        "ide/settings.html",
        {
            "fields": fields,
            "runtime": runtime,
            "runtimes": ps.RUNTIMES.items(),
            "runtime_error": errors.get("default_runtime", ""),
            "errors": errors,
            "settings_row": row,
            "history": _history(),
        },
        status=status,
    )


@requires(Capability.ADMIN)
def settings_page(request: HttpRequest) -> HttpResponse:
    row = ps.current()
    if request.method != "POST":
        values = {f.name: f.to_form(getattr(row, f.name)) for f in ps.LIMIT_FIELDS}
        return _render(request, values, row.default_runtime, {})
    values = {f.name: request.POST.get(f.name, "").strip() for f in ps.LIMIT_FIELDS}
    runtime = request.POST.get("default_runtime", row.default_runtime)
    limits, errors = _limits_from_form(request.POST)
    if not errors:
        try:
            changes = ps.update(request.user, limits, runtime)
        except ps.SettingsError as exc:
            errors = exc.errors
    if errors:
        return _render(request, values, runtime, errors, status=400)
    if changes:
        messages.success(
            request,
            f"Settings saved ({len(changes)} changed). They apply to runs started from now on.",
        )
    else:
        messages.info(request, "Nothing changed.")
    return redirect("settings")
