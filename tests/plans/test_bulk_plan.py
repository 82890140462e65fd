"""A bulk run in plan mode: every device's run plans; the plans apply together
in one run, only when every device's plan succeeded."""

from __future__ import annotations

import copy

import pytest

from oktoscripts.automations.models import BulkRun, BulkRunItem
from oktoscripts.runs.models import Run
from oktoscripts.scripts import editing
from tests.ide import conftest as _ide

from .test_plan_rest import PLAN

fast_passwords, users, client_for = _ide.fast_passwords, _ide.users, _ide.client_for


def _plan_for(serial: str) -> dict:
    plan = copy.deepcopy(PLAN)
    plan["devices"] = {serial: plan["devices"]["SN-1"]}
    return plan


@pytest.fixture
def bulk_plan(users, nats_url):
    script = editing.create_script(users["author"], "bulk-planned", "return 1")
    record = BulkRun.objects.create(
        name="plan all",
        script=script,
        version=script.latest,
        mode="plan",
        status="finished",
        created_by=users["operator"],
        configured_by=users["operator"],
    )
    for serial in ("B-1", "B-2"):
        run = Run.objects.create(
            script_name="bulk-planned",
            code="--",
            mode="plan",
            status="succeeded",
            started_by="user",
            metrics={"plan": _plan_for(serial)},
        )
        BulkRunItem.objects.create(bulk=record, serial=serial, run_id=run.pk, status="succeeded")
    return record


def test_a_bulk_plan_applies_in_one_run(client_for, bulk_plan):
    operator = client_for("operator")
    assert client_for("viewer").post(f"/api/bulk-runs/{bulk_plan.pk}/apply").status_code == 403
    applied = operator.post(f"/api/bulk-runs/{bulk_plan.pk}/apply")
    assert applied.status_code == 201, applied.content
    run = Run.objects.get(pk=applied.json()["run_id"])
    assert run.mode == "apply" and run.trigger == f"plan of bulk run #{bulk_plan.pk}"
    assert '"serial": "B-1"' in run.code and '"serial": "B-2"' in run.code

    item = bulk_plan.items.get(serial="B-2")
    Run.objects.filter(pk=item.run_id).update(status="failed")
    refused = operator.post(f"/api/bulk-runs/{bulk_plan.pk}/apply")
    assert refused.status_code == 409 and "every device's plan succeeded" in refused.json()["error"]
    BulkRun.objects.filter(pk=bulk_plan.pk).update(mode="run")
    not_plan = operator.post(f"/api/bulk-runs/{bulk_plan.pk}/apply")
    assert not_plan.status_code == 409 and "not run in plan mode" in not_plan.json()["error"]
