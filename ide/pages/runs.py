"""Run pages: the history with filters and chart, and one run."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ide import chart
from ide.access import requires
from ide.pages.fixtures import fixture_script, fixture_verdict
from ide.runfilters import RunFilters
from oktoscripts.roles import Capability
from oktoscripts.runs.models import Run
from oktoscripts.scripts.models import Script, ScriptVersion
from oktoscripts.scripts.start import Origin, Source, start_run


@requires(Capability.READ)
def run_list(request: HttpRequest) -> HttpResponse:
    filters = RunFilters.from_query(request.GET)
    page = filters.page()
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "ide/run_list.html",
        {
            "runs": page.rows,
            "next_cursor": page.next_cursor,
            "f": filters,
            "chart_svg": chart.render(filters.chart()),
            "legend": chart.legend(),
            "statuses": Run.Status.choices,
            "query": query.urlencode(),
            "script_names": Script.objects.filter(deleted=False)
            .order_by("name")
            .values_list("name", flat=True)[:1000],
            "since_value": request.GET.get("since", ""),
            "until_value": request.GET.get("until", ""),
        },
    )


@requires(Capability.READ)
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("user"), pk=run_id)
    version = None
    if run.script_version_id:
        version = (
            ScriptVersion.objects.select_related("script")
            .defer("content")
            .filter(pk=run.script_version_id)
            .first()
        )
    error_line = (run.error or {}).get("line")
    metrics = dict(run.metrics or {})
    calls = metrics.get("binding_calls")
    if isinstance(calls, dict):  # {"name": count}: shown as a total and the names
        metrics["binding_calls"] = sum(calls.values())
        metrics["binding_names"] = ", ".join(f"{k} ×{v}" for k, v in sorted(calls.items()))
    return render(
        request,
        "ide/run.html",
        {
            "plan": _plan_view(run, metrics),
            "plan_of": run.plan_of_id,
            "recorded": run.is_final and bool((metrics.get("recording") or {}).get("calls")),
            "replay": metrics.get("replay") if run.mode == Run.Mode.REPLAY else None,
            "fixture_script": fixture_script(run),
            "fixture_verdict": fixture_verdict(run),
            "run": run,
            "version": version,
            "code_lines": run.code.splitlines(),
            "error_line": error_line,
            "metrics": metrics,
            "device_calls": (metrics.get("device_calls") or [])[:200],
            "duration": (run.finished - run.started).total_seconds()
            if run.finished and run.started
            else None,
            "run_config": {
                "runId": str(run.pk),
                "final": run.is_final,
                "started": run.started.timestamp() if run.started else None,
            },
        },
    )


@requires(Capability.RUN)
@require_POST
def rerun(request: HttpRequest, run_id: str) -> HttpResponse:
    """Run the same version again with the same arguments."""
    from oktoscripts.runs.submit import RunQueueError

    old = get_object_or_404(Run, pk=run_id)
    version = (
        ScriptVersion.objects.select_related("script").filter(pk=old.script_version_id).first()
    )
    if version is None or version.script.deleted:
        messages.error(request, "This run's script version is not available to run again.")
        return redirect("run", old.pk)
    try:
        run = start_run(
            Source.saved(version), user=request.user, args=old.args, origin=Origin("user")
        )
    except (RunQueueError, ValueError) as exc:
        messages.error(request, str(exc))
        return redirect("run", old.pk)
    return redirect("run", run.pk)


def _plan_view(run: Run, metrics: dict) -> dict | None:
    """A plan-mode run's plan as the page shows it: per device, each change
    (before -> after) with the script line that asked for it."""
    from oktoscripts.scripts import apply

    if run.mode != Run.Mode.PLAN:
        return None
    plan = metrics.get("plan") or {}
    devices = []
    for serial, entry in sorted((plan.get("devices") or {}).items()):
        rows = [
            {"line": call.get("line"), "method": call["method"], **change}
            for call in entry["calls"]
            for change in call["changes"]
        ]
        devices.append({"serial": serial, "protocol": entry["protocol"], "rows": rows})
    applications = list(
        Run.objects.filter(plan_of=run).order_by("created").values("id", "status", "result")
    )
    return {
        "devices": devices,
        "summary": apply.summary(plan),
        "left_out": plan.get("left_out"),
        "applications": applications,
    }


@requires(Capability.RUN)
@require_POST
def apply_plan(request: HttpRequest, run_id: str) -> HttpResponse:
    """Start the run that applies this run's plan."""
    from oktoscripts.runs.submit import RunQueueError
    from oktoscripts.scripts.apply import start_apply

    plan_run = get_object_or_404(Run, pk=run_id)
    try:
        run = start_apply(plan_run, request.user, "user")
    except (RunQueueError, ValueError) as exc:
        messages.error(request, str(exc))
        return redirect("run", plan_run.pk)
    return redirect("run", run.pk)


@requires(Capability.RUN)
@require_POST
def replay_run(request: HttpRequest, run_id: str) -> HttpResponse:
    """Start the replay of this run against its recorded device calls."""
    from oktoscripts.runs.submit import RunQueueError
    from oktoscripts.scripts.replay import start_replay

    recorded = get_object_or_404(Run, pk=run_id)
    try:
        run = start_replay(recorded, request.user, "user")
    except (RunQueueError, ValueError) as exc:
        messages.error(request, str(exc))
        return redirect("run", recorded.pk)
    return redirect("run", run.pk)
