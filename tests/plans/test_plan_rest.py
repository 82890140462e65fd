"""Plans over REST: a run started in plan mode, its plan, applying it (roles,
refusals with the reason, the apply run linked to its plan, audited)."""

from __future__ import annotations

import pytest

from oktoscripts.runs.models import Run
from oktoscripts.scripts import editing
from oktoscripts.scripts.models import AuditEvent
from tests.ide import conftest as _ide

fast_passwords, users, client_for = _ide.fast_passwords, _ide.users, _ide.client_for

PLAN = {
    "devices": {
        "SN-1": {
            "protocol": "cwmp",
            "calls": [
                {
                    "line": 2,
                    "method": "SetParameterValues",
                    "request": {
                        "method": "SetParameterValues",
                        "names": [],
                        "values": [["A.B", "x", "string"]],
                        "object_name": "",
                        "path": "",
                        "next_level": False,
                        "parameter_key": "",
                    },
                    "changes": [
                        {
                            "op": "set",
                            "path": "A.B",
                            "before": "y",
                            "after": "x",
                            "type": "string",
                            "checked": True,
                        }
                    ],
                }
            ],
        }
    },
    "left_out": 0,
    "overhead_s": 0.0,
}


@pytest.fixture
def plan_run(users, nats_url):
    return Run.objects.create(
        script_name="rename",
        code="-- planned",
        mode="plan",
        status="succeeded",
        started_by="user",
        user=users["operator"],
        metrics={"plan": PLAN},
    )


def test_plan_mode_run_and_apply_over_rest(client_for, users, plan_run):
    script = editing.create_script(users["author"], "planned", "return 1")
    operator, viewer = client_for("operator"), client_for("viewer")
    started = operator.post(
        "/api/runs", {"script_id": script.pk, "mode": "plan"}, content_type="application/json"
    )
    assert started.status_code == 201 and started.json()["mode"] == "plan"
    assert (
        operator.post(
            "/api/runs", {"script_id": script.pk, "mode": "dry"}, content_type="application/json"
        ).status_code
        == 400
    )

    shown = viewer.get(f"/api/runs/{plan_run.pk}/plan").json()
    assert shown["summary"] == {"devices": 1, "calls": 1, "changes": 1}
    assert shown["plan"]["devices"]["SN-1"]["calls"][0]["changes"][0]["before"] == "y"
    assert viewer.post(f"/api/runs/{plan_run.pk}/apply").status_code == 403

    applied = operator.post(f"/api/runs/{plan_run.pk}/apply")
    assert applied.status_code == 201, applied.content
    run = Run.objects.get(pk=applied.json()["id"])
    assert run.mode == "apply" and run.plan_of_id == plan_run.pk
    assert "local PLAN = json_decode" in run.code and "SN-1" in run.code
    assert viewer.get(f"/api/runs/{plan_run.pk}/plan").json()["applications"] == [str(run.pk)]
    event = AuditEvent.objects.filter(action="run.start").latest("id")
    assert event.details["mode"] == "apply" and event.details["plan_of"] == str(plan_run.pk)

    not_a_plan = operator.post(f"/api/runs/{run.pk}/apply")
    assert not_a_plan.status_code == 409 and "not run in plan mode" in not_a_plan.json()["error"]
    page = operator.get(f"/runs/{plan_run.pk}/").content.decode()
    assert 'id="apply-plan"' in page and "A.B" in page and "Applied by" in page
