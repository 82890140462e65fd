"""Script pages: the list, the editor, versions, diffs."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_POST

from ide import diff
from ide.access import requires
from ide.api.arguments import presets_of
from ide.completion import completion_data
from ide.models import Breakpoints, LastArguments
from ide.paging import page_number
from ide.runfilters import attach_version_numbers
from oktoscripts.roles import Capability, can
from oktoscripts.runs.models import Run
from oktoscripts.scripts import editing, platform_settings
from oktoscripts.scripts.models import Script, ScriptVersion

PAGE_SIZE = 100
NEW_SCRIPT = """-- {name}
-- Arguments given to the run are in the table `args`.

local devices = get_all_devices()
print(("%d devices"):format(#devices))

return devices
"""


@requires(Capability.READ)
def script_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    folder = request.GET.get("folder")
    tag = request.GET.get("tag", "").strip().lower()
    show_deleted = request.GET.get("deleted") == "1"
    scripts_qs = Script.objects.filter(deleted=show_deleted)
    folders = (
        Script.objects.filter(deleted=False)
        .values("folder")
        .annotate(n=Count("id"))
        .order_by("folder")
    )
    if q:
        scripts_qs = scripts_qs.filter(
            Q(name__icontains=q) | Q(description__icontains=q) | Q(tags__icontains=q)
        )
    if folder is not None:
        scripts_qs = scripts_qs.filter(Q(folder=folder) | Q(folder__startswith=folder + "/"))
    if tag:  # tags are one space-separated column: match a whole word
        scripts_qs = scripts_qs.filter(
            Q(tags=tag)
            | Q(tags__startswith=tag + " ")
            | Q(tags__endswith=" " + tag)
            | Q(tags__contains=f" {tag} ")
        )
    page = page_number(request.GET)
    # The last run of each listed script: one index seek per row, inside the same query.
    last_runs = Run.objects.filter(script_name=OuterRef("name")).order_by("-created")
    rows = list(
        scripts_qs.select_related("latest", "latest__author")
        .only(
            "name",
            "folder",
            "tags",
            "description",
            "updated",
            "deleted_at",
            "latest__number",
            "latest__author__username",
            "latest__created",
        )
        .annotate(
            last_run_status=Subquery(last_runs.values("status")[:1]),
            last_run_at=Subquery(last_runs.values("created")[:1]),
            last_run_id=Subquery(last_runs.values("id")[:1]),
        )[(page - 1) * PAGE_SIZE : page * PAGE_SIZE + 1]
    )
    for row in rows:
        row.last_run_label = (row.last_run_status or "").replace("_", " ")
    has_next = len(rows) > PAGE_SIZE
    total = Script.objects.filter(deleted=False).count()
    return render(
        request,
        "ide/script_list.html",
        {
            "scripts": rows[:PAGE_SIZE],
            "folders": folders,
            "q": q,
            "folder": folder,
            "tag": tag,
            "show_deleted": show_deleted,
            "page": page,
            "has_next": has_next,
            "total": total,
            "deleted_count": Script.objects.filter(deleted=True).count(),
        },
    )


@requires(Capability.EDIT)
@require_POST
def script_create(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "")
    try:
        # No version yet: the editor opens with the template as unsaved text,
        # and the first Save makes version 1 (a template is not a version).
        script = editing.create_script(
            request.user,
            name,
            None,
            folder=request.POST.get("folder", ""),
            tags=request.POST.get("tags", ""),
        )
    except editing.ScriptError as exc:
        messages.error(request, str(exc))
        return redirect("scripts")
    return redirect("editor", script.pk)


def _limits_from_form(form: dict) -> dict:
    """The limit fields of the details form, in the engine's units."""
    scale = {"wall_seconds": 1, "memory_bytes": 1024 * 1024, "instructions": 1_000_000}
    limits = {}
    for name, factor in scale.items():
        raw = (form.get(name) or "").strip()
        if raw:
            try:
                value = float(raw) * factor
            except ValueError:
                raise editing.ScriptError(
                    f"{name.replace('_', ' ')}: {raw!r} is not a number"
                ) from None
            limits[name] = value if name == "wall_seconds" else int(value)
    return limits


@requires(Capability.EDIT)
@require_POST
def script_settings(request: HttpRequest, script_id: int) -> HttpResponse:
    script = get_object_or_404(Script, pk=script_id)
    try:
        editing.update_script(
            request.user,
            script,
            name=request.POST.get("name"),
            folder=request.POST.get("folder"),
            tags=request.POST.get("tags"),
            description=request.POST.get("description"),
            runtime=request.POST.get("runtime"),
            limits=_limits_from_form(request.POST) if "wall_seconds" in request.POST else None,
        )
        messages.success(request, "Script details saved.")
    except editing.ScriptError as exc:
        messages.error(request, str(exc))
    return redirect("editor", script.pk)


@requires(Capability.EDIT)
@require_POST
def script_delete(request: HttpRequest, script_id: int) -> HttpResponse:
    script = get_object_or_404(Script, pk=script_id)
    editing.delete_script(request.user, script)
    messages.success(
        request,
        f"Deleted “{script.name}”. Its versions and runs are kept; "
        "it can be restored from the deleted scripts.",
    )
    return redirect("scripts")


@requires(Capability.EDIT)
@require_POST
def script_undelete(request: HttpRequest, script_id: int) -> HttpResponse:
    script = get_object_or_404(Script, pk=script_id)
    editing.undelete_script(request.user, script)
    messages.success(request, f"Restored “{script.name}”.")
    return redirect("editor", script.pk)


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}"


@requires(Capability.READ)
def editor(request: HttpRequest, script_id: int) -> HttpResponse:
    script = get_object_or_404(
        Script.objects.select_related("latest", "latest__author"), pk=script_id
    )
    recent = list(
        Run.objects.filter(script_name=script.name).only(
            "id", "status", "created", "started_by", "script_version_id"
        )[:8]
    )
    attach_version_numbers(recent)
    version = script.latest
    limits = script.limits or {}
    limit_form = {
        "wall_seconds": _number(limits.get("wall_seconds")),
        "memory_bytes": _number(limits["memory_bytes"] / (1024 * 1024))
        if "memory_bytes" in limits
        else "",
        "instructions": _number(limits["instructions"] / 1_000_000)
        if "instructions" in limits
        else "",
    }
    return render(
        request,
        "ide/editor.html",
        {
            "script": script,
            "version": version,
            # Only for whoever may save it: to others a script without a version is empty.
            "template": NEW_SCRIPT.format(name=script.name)
            if version is None and can(request.user, Capability.EDIT)
            else "",
            "recent_runs": recent,
            "limit_form": limit_form,
            "platform_limits": platform_settings.describe_limits(),
            "completion_json": completion_data(),
            "editor_config": {
                "scriptId": script.pk,
                "scriptName": script.name,
                "user": request.user.username,
                "version": version.number if version else 0,
                "canEdit": can(request.user, Capability.EDIT) and not script.deleted,
                "canRun": can(request.user, Capability.RUN) and not script.deleted,
                "aceBase": static("django_ace/ace"),
                # The user's debugger breakpoints here (static/js/debugger.js).
                "breakpoints": Breakpoints.of(request.user, script.pk)
                if can(request.user, Capability.RUN)
                else [],
                # The arguments: declared by the version, presets of the script,
                # this person's last ones (static/js/arguments.js).
                "arguments": list(version.arguments or []) if version else [],
                "presets": presets_of(script.pk),
                "lastArgs": LastArguments.of(request.user, script.pk)
                if can(request.user, Capability.RUN)
                else {},
            },
        },
    )


@requires(Capability.READ)
def versions(request: HttpRequest, script_id: int) -> HttpResponse:
    script = get_object_or_404(Script, pk=script_id)
    rows = list(
        ScriptVersion.objects.filter(script=script)
        .select_related("author")
        .defer("content")
        .order_by("-number")[:500]
    )
    return render(request, "ide/versions.html", {"script": script, "versions": rows})


@requires(Capability.READ)
def version_detail(request: HttpRequest, script_id: int, number: int) -> HttpResponse:
    version = get_object_or_404(
        ScriptVersion.objects.select_related("script", "author"),
        script_id=script_id,
        number=number,
    )
    return render(
        request,
        "ide/version.html",
        {
            "script": version.script,
            "version": version,
            "lines": version.content.splitlines(),
        },
    )


@requires(Capability.READ)
def version_diff(request: HttpRequest, script_id: int) -> HttpResponse:
    script = get_object_or_404(Script.objects.select_related("latest"), pk=script_id)
    latest = script.latest.number if script.latest else 1
    try:
        a = int(request.GET.get("a", max(1, latest - 1)))
        b = int(request.GET.get("b", latest))
    except ValueError:
        raise Http404("version numbers are integers") from None
    found = {
        v.number: v
        for v in ScriptVersion.objects.filter(script=script, number__in=(a, b)).select_related(
            "author"
        )
    }
    if a not in found or b not in found:
        raise Http404("no such version")
    rows = diff.side_by_side(found[a].content, found[b].content)
    numbers = list(
        ScriptVersion.objects.filter(script=script)
        .order_by("-number")
        .values_list("number", flat=True)[:500]
    )
    return render(
        request,
        "ide/diff.html",
        {
            "script": script,
            "a": found[a],
            "b": found[b],
            "rows": rows,
            "stats": diff.stats(rows),
            "numbers": numbers,
        },
    )


@requires(Capability.EDIT)
@require_POST
def version_restore(request: HttpRequest, script_id: int, number: int) -> HttpResponse:
    script = get_object_or_404(Script, pk=script_id)
    try:
        version = editing.restore_version(request.user, script, number)
    except ScriptVersion.DoesNotExist:
        raise Http404("no such version") from None
    except editing.ScriptError as exc:
        messages.error(request, str(exc))
        return redirect("versions", script.pk)
    messages.success(request, f"Restored version {number} as version {version.number}.")
    return redirect("editor", script.pk)
