"""Saving a run as a test fixture of its script, from the run's page ("Save as
fixture"; the REST API has the same: ide/api/fixtures.py)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from ide.access import requires
from oktoscripts.roles import Capability
from oktoscripts.runs.models import Run
from oktoscripts.scripts import audit, fixtures
from oktoscripts.scripts.models import Script


def fixture_script(run: Run) -> Script | None:
    """The library script a fixture of this run would belong to (None: the run
    cannot become one: not finished, a plan, or of no script in the library)."""
    if not run.is_final or run.mode == Run.Mode.PLAN:
        return None
    return fixtures.script_of(run)


def fixture_verdict(run: Run) -> fixtures.Verdict | None:
    """The verdict of a finished run that checked a fixture (None for other runs)."""
    if run.fixture_id is None or run.fixture is None:
        return None
    return fixtures.run_verdict(run, run.fixture)


@requires(Capability.EDIT)
@require_POST
def save_fixture(request: HttpRequest, run_id: str) -> HttpResponse:
    """Keep the run's recording as a fixture: the script must end as the run did
    and return the given result (default: the run's)."""
    run = get_object_or_404(Run, pk=run_id)
    expected = ...
    text = request.POST.get("expected_result", "").strip()
    if text:
        try:
            expected = json.loads(text)
        except ValueError:
            messages.error(request, "The expected result is not valid JSON.")
            return redirect("run", run.pk)
    try:
        with transaction.atomic():
            fixture = fixtures.save_from_run(
                run,
                request.POST.get("name", ""),
                request.user,
                expected_result=expected,
                check_output=request.POST.get("check_output") == "on",
            )
    except IntegrityError:
        messages.error(request, "This script has a fixture of that name already.")
        return redirect("run", run.pk)
    except fixtures.FixtureError as exc:
        messages.error(request, str(exc))
        return redirect("run", run.pk)
    audit.record(
        request.user, "fixture.create", fixture.script.name, fixture=fixture.name, run=str(run.pk)
    )
    messages.success(request, f"Saved fixture {fixture.name!r}: the editor's Fixtures tab runs it.")
    return redirect("run", run.pk)
