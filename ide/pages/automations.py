"""Automation pages: schedules, deployed listeners, event triggers, bulk runs.

The pages show; changes go through the REST endpoints (ide/api/automations.py)
from the page's JavaScript, so roles and the audit log apply in one place.
"""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from ide.access import requires
from ide.api.automations import (
    bulk_json,
    deployment_json,
    deployments_with_runs,
    schedule_json,
    trigger_json,
)
from oktoscripts.automations import bulk, devicefilter, schedules
from oktoscripts.automations.models import (
    BulkRun,
    Deployment,
    RolloutPolicy,
    Schedule,
    Trigger,
)
from oktoscripts.roles import Capability
from oktoscripts.runs.models import RunOutputLine
from oktoscripts.scripts.models import Script

OUTPUT_LINES = 100
RELATED = ("script", "version", "created_by", "configured_by")


def _scripts() -> list[tuple[int, str]]:
    return list(Script.objects.filter(deleted=False).order_by("name").values_list("id", "name"))


@requires(Capability.READ)
def index(request: HttpRequest) -> HttpResponse:
    bulks = list(BulkRun.objects.select_related(*RELATED)[:50])
    return render(
        request,
        "ide/automations/index.html",
        {
            "schedules": Schedule.objects.select_related(*RELATED),
            "deployments": [
                deployment_json(d, r)
                for d, r in deployments_with_runs(list(Deployment.objects.select_related(*RELATED)))
            ],
            "triggers": [trigger_json(t) for t in Trigger.objects.select_related(*RELATED)],
            "bulks": [(b, bulk.progress(b), devicefilter.describe(b.device_filter)) for b in bulks],
            "scripts": _scripts(),
            "policy": RolloutPolicy.load(),
        },
    )


@requires(Capability.READ)
def schedule_detail(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule.objects.select_related(*RELATED), pk=schedule_id)
    data = schedule_json(schedule, detail=True)
    try:
        preview = schedules.preview(schedule.cron, schedule.timezone, 10)
    except schedules.ScheduleError:
        preview = []
    return render(
        request,
        "ide/automations/schedule.html",
        {
            "s": schedule,
            "data": data,
            "preview": preview,
            "ticks": schedule.ticks.all()[:50],
        },
    )


@requires(Capability.READ)
def bulk_detail(request: HttpRequest, bulk_id: int) -> HttpResponse:
    record = get_object_or_404(BulkRun.objects.select_related(*RELATED), pk=bulk_id)
    return render(
        request,
        "ide/automations/bulk.html",
        {
            "b": record,
            "filter_text": devicefilter.describe(record.device_filter),
            "config": {"id": record.pk, "initial": bulk_json(record, detail=True)},
        },
    )


@requires(Capability.READ)
def deployment_detail(request: HttpRequest, deployment_id: int) -> HttpResponse:
    record = get_object_or_404(Deployment.objects.select_related(*RELATED), pk=deployment_id)
    ((record, run),) = deployments_with_runs([record])
    lines = []
    if run is not None:
        lines = list(RunOutputLine.objects.filter(run_id=run.pk).order_by("-seq")[:OUTPUT_LINES])
        lines.reverse()
    return render(
        request,
        "ide/automations/deployment.html",
        {
            "d": record,
            "data": deployment_json(record, run),
            "run": run,
            "lines": lines,
            "last_events": [
                {"time": e.get("time"), "json": json.dumps(e.get("event"), sort_keys=True)}
                for e in reversed(record.last_events or [])
            ],
        },
    )
