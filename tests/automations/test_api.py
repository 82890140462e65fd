"""The automation REST API and pages: roles, validation, audit log."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from oktoscripts.automations.models import BulkRun, Deployment, Schedule, Trigger
from oktoscripts.scripts.models import AuditEvent

from .test_bulk import register

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clients(transactional_db):
    from django.apps import apps
    from django.contrib.auth.models import Group, User

    from oktoscripts.roles import sync_groups
    from oktoscripts.scripts.editing import create_script

    sync_groups(apps)
    out = {}
    for role in ("Viewer", "Author", "Operator", "Admin"):
        user = User.objects.create_user(role.lower())
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        out[role.lower()] = client
    out["script"] = create_script(User.objects.get(username="admin"), "job.lua", "return ...")
    return out


def call(client: Client, method: str, url: str, body: dict | None = None):
    response = getattr(client, method.lower())(
        url, data=json.dumps(body) if body is not None else None, content_type="application/json"
    )
    return response.status_code, response.json()


def test_operators_schedule_authors_cannot_and_it_is_audited(clients):
    script = clients["script"]
    body = {
        "name": "nightly",
        "script_id": script.pk,
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "args": {"mode": "full"},
    }
    status, data = call(clients["author"], "POST", "/api/schedules", body)
    assert status == 403 and "run_scripts" in data["error"]
    status, data = call(clients["operator"], "POST", "/api/schedules", body)
    assert status == 201, data
    assert data["next_tick"] and len(data["preview"]) == 5 and data["version"] is None
    assert data["preview"][0].endswith(("+01:00", "+02:00")) and "T03:00:00" in data["preview"][0]
    event = AuditEvent.objects.get(action="schedule.create")
    assert event.actor_name == "operator" and event.details["cron"] == "0 3 * * *"

    status, listed = call(clients["viewer"], "GET", "/api/schedules")
    assert status == 200 and [s["name"] for s in listed["schedules"]] == ["nightly"]
    status, data = call(
        clients["operator"], "PATCH", f"/api/schedules/{data['id']}", {"enabled": False}
    )
    assert status == 200 and data["enabled"] is False and data["next_tick"] is None
    assert AuditEvent.objects.filter(action="schedule.update").exists()


def test_bad_schedule_input_gets_a_clear_error(clients):
    script = clients["script"]
    op = clients["operator"]
    status, data = call(
        op, "POST", "/api/schedules", {"name": "x", "script_id": script.pk, "cron": "every day"}
    )
    assert status == 400 and "5 fields" in data["error"]
    status, data = call(
        op,
        "POST",
        "/api/schedules",
        {"name": "x", "script_id": script.pk, "cron": "0 3 * * *", "timezone": "Nowhere/Town"},
    )
    assert status == 400 and "unknown time zone" in data["error"]
    status, data = call(
        op,
        "POST",
        "/api/schedules",
        {"name": "x", "script_id": script.pk, "cron": "0 3 * * *", "version": 9},
    )
    assert status == 404 and "no version 9" in data["error"]
    status, data = call(op, "POST", "/api/schedules/preview", {"cron": "*/20 * * * *", "count": 3})
    assert status == 200 and len(data["next"]) == 3
    assert not Schedule.objects.exists()


def test_triggers_and_deployments_through_the_api(clients):
    script = clients["script"]
    op = clients["operator"]
    status, data = call(
        op,
        "POST",
        "/api/triggers",
        {
            "name": "on boot",
            "kind": "cwmp_event",
            "event": "1 BOOT",
            "script_id": script.pk,
            "device_filter": {"vendor": "Acme"},
        },
    )
    assert status == 201, data
    assert data["event"] == "1" and data["device_filter"] == {"vendor": "Acme"}
    status, data = call(
        op,
        "POST",
        "/api/triggers",
        {
            "name": "bad",
            "kind": "cwmp_event",
            "script_id": script.pk,
            "device_filter": {"colour": "red"},
        },
    )
    assert status == 400 and "colour" in data["error"]
    status, data = call(clients["author"], "POST", "/api/deployments", {"script_id": script.pk})
    assert status == 403
    status, data = call(op, "POST", "/api/deployments", {"script_id": script.pk, "name": "w"})
    assert status == 201 and data["version"] == 1 and data["state"] == "starting"
    status, stopped = call(op, "POST", f"/api/deployments/{data['id']}/stop")
    assert status == 200 and stopped["state"] == "stopped"
    status, _ = call(op, "DELETE", f"/api/deployments/{data['id']}")
    assert status == 200 and not Deployment.objects.exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "trigger.create",
        "deployment.create",
        "deployment.stop",
        "deployment.delete",
    } <= actions
    assert Trigger.objects.count() == 1


def test_bulk_run_through_the_api(clients, registry):
    register(registry, 5)
    script = clients["script"]
    status, data = call(
        clients["operator"],
        "POST",
        "/api/bulk-runs",
        {"script_id": script.pk, "device_filter": {"vendor": "Acme"}, "concurrency": 2},
    )
    assert status == 201, data
    assert data["progress"]["total"] == 5 and data["status"] == "running"
    status, detail = call(clients["viewer"], "GET", f"/api/bulk-runs/{data['id']}")
    assert [i["serial"] for i in detail["items"]] == [f"ACME-{n:03d}" for n in range(1, 6)]
    status, err = call(
        clients["operator"],
        "POST",
        "/api/bulk-runs",
        {"script_id": script.pk, "device_filter": {"vendor": "Nobody"}},
    )
    assert status == 400 and "no device matches" in err["error"]
    status, _ = call(clients["author"], "POST", f"/api/bulk-runs/{data['id']}/stop")
    assert status == 403
    status, stopped = call(clients["operator"], "POST", f"/api/bulk-runs/{data['id']}/stop")
    assert status == 200 and stopped["status"] == "stopping"
    assert BulkRun.objects.get().status == "stopping"
    assert AuditEvent.objects.filter(action="bulk.start", details__devices=5).exists()


def test_pages_show_automations_and_offer_changes_only_to_operators(clients, registry):
    op, viewer = clients["operator"], clients["viewer"]
    call(
        op,
        "POST",
        "/api/schedules",
        {"name": "nightly", "script_id": clients["script"].pk, "cron": "0 3 * * *"},
    )
    register(registry, 2)
    _, b = call(op, "POST", "/api/bulk-runs", {"script_id": clients["script"].pk})
    _, d = call(op, "POST", "/api/deployments", {"script_id": clients["script"].pk})
    page = op.get("/automations/").content.decode()
    assert "nightly" in page and 'id="new-schedule"' in page and "Automations" in page
    page = viewer.get("/automations/").content.decode()
    assert "nightly" in page and 'id="new-schedule"' not in page
    schedule = Schedule.objects.get()
    assert viewer.get(f"/automations/schedules/{schedule.pk}/").status_code == 200
    assert viewer.get(f"/automations/bulk/{b['id']}/").status_code == 200
    assert viewer.get(f"/automations/deployments/{d['id']}/").status_code == 200
    spec = viewer.get("/api/openapi.json").json()
    assert "/api/schedules" in spec["paths"] and "/api/bulk-runs/{bulk_id}/retry" in spec["paths"]
