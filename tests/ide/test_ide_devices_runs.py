"""Device pages over the real device registry (MongoDB wire server), and
starting/cancelling runs through the REST API over real NATS."""

from __future__ import annotations

import pytest
from django.utils import timezone

from ide.models import ApiToken
from oktoscripts.scripts import editing as scripts
from oktoscripts.scripts.models import AuditEvent


@pytest.fixture
def devices(mongo_uri):
    """Two devices recorded through the registry's own write API, as the ACS
    and the USP controller record them."""
    from oktoscripts.devices.client import default_registry

    registry = default_registry()
    registry.collection.delete_many({})
    registry.upsert_cwmp(
        "ACME-0001",
        oui="00AA11",
        product_class="Router",
        manufacturer="Acme",
        model="R1",
        software_version="1.0",
        events=["1 BOOT", "2 PERIODIC"],
        periodic_inform_interval=300,
    )
    registry.set_alias("ACME-0001", "lab router")
    registry.set_params("ACME-0001", {"Device.DeviceInfo.SoftwareVersion": "1.2.3"})
    registry.upsert_usp("ONT-77", vendor="Fibre Co", model="O7", product_class="ONT", state=0)
    yield registry
    registry.collection.delete_many({})


def test_device_list_filters(client_for, devices):
    viewer = client_for("viewer")
    page = viewer.get("/devices/").content.decode()
    assert "ACME-0001" in page and "ONT-77" in page
    online = viewer.get("/devices/?status=2").content.decode()
    assert "ACME-0001" in online and "ONT-77" not in online
    assert "ACME-0001" not in viewer.get("/devices/?vendor=Fibre+Co").content.decode()
    assert "ONT-77" in viewer.get("/devices/?protocol=usp").content.decode()
    assert "ONT-77" not in viewer.get("/devices/?product_class=Router").content.decode()


def test_device_page_shows_record_and_recent_events(client_for, devices):
    page = client_for("viewer").get("/devices/ACME-0001/").content.decode()
    assert "1 BOOT" in page and "Device.DeviceInfo.SoftwareVersion" in page and "1.2.3" in page
    assert client_for("viewer").get("/devices/NOPE/").status_code == 404
    assert client_for("nobody").get("/devices/").status_code == 403


def test_device_page_reports_onboarding_and_a_factory_credential_refused(client_for, devices):
    from datetime import UTC, datetime

    devices.set_onboarding(
        "ACME-0001", {"state": "done", "at": datetime.now(UTC), "username": "00AA11-ACME-0001"}
    )
    devices.note_factory_refusal("ACME-0001", datetime.now(UTC))
    page = client_for("viewer").get("/devices/ACME-0001/").content.decode()
    assert "given its own ACS credential" in page and "00AA11-ACME-0001" in page
    assert "factory credential refused 1 time" in page


def test_operator_starts_and_cancels_a_run_of_the_exact_version(client_for, users, nats_url):
    from oktoscripts.runs.models import Run

    script = scripts.create_script(users["author"], "api-run", "return 1")
    v2 = scripts.save_version(users["author"], script, "return 2")
    scripts.update_script(users["author"], script, limits={"wall_seconds": 5})
    _, raw = ApiToken.issue(users["operator"], "ops")
    from django.test import Client

    api = Client(headers={"Authorization": f"Bearer {raw}"})
    started = api.post(
        "/api/runs",
        {"script_id": script.pk, "version": 1, "args": {"serial": "ACME-0001", "n": 3}},
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    run = Run.objects.get(pk=started.json()["id"])
    assert (run.code, run.started_by, run.args) == (
        "return 1",
        "api",
        {"serial": "ACME-0001", "n": 3},
    )
    assert run.script_version_id == script.versions.get(number=1).pk
    assert run.limits["wall_seconds"] == 5  # the script override, among the effective limits
    latest = (
        client_for("operator")
        .post("/api/runs", {"script_id": script.pk}, content_type="application/json")
        .json()
    )
    assert Run.objects.get(pk=latest["id"]).script_version_id == v2.pk
    status = api.get(f"/api/runs/{run.pk}").json()
    assert (status["status"], status["version"]) == ("queued", 1)
    cancelled = api.post(f"/api/runs/{run.pk}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert api.get(f"/api/runs/{run.pk}/result").json()["status"] == "cancelled"
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {"run.start", "run.cancel"}
    bad = api.post(
        "/api/runs", {"script_id": script.pk, "args": ["x"]}, content_type="application/json"
    )
    assert bad.status_code == 400 and "args" in bad.json()["error"]
    revoked = Client(headers={"Authorization": "Bearer okt_nope"}).get("/api/runs")
    assert revoked.status_code == 401


def test_history_page_filters_and_pages(client_for, users):
    from oktoscripts.runs.models import Run

    now = timezone.now()
    Run.objects.bulk_create(
        Run(
            script_name="s1" if i % 2 else "s2",
            code="",
            started_by="user",
            user=users["admin"],
            status="failed" if i % 3 == 0 else "succeeded",
            created=now - timezone.timedelta(minutes=i),
        )
        for i in range(120)
    )
    viewer = client_for("viewer")
    page = viewer.get("/runs/?script=s1&status=failed")
    assert page.status_code == 200
    rows = page.context["runs"]
    assert rows and all(r.script_name == "s1" and r.status == "failed" for r in rows)
    first = viewer.get("/runs/")
    seen = [r.pk for r in first.context["runs"]]
    second = viewer.get(f"/runs/?before={first.context['next_cursor']}")
    assert len(seen) == 50 and not set(seen) & {r.pk for r in second.context["runs"]}
    assert "<svg" in first.content.decode()
    by_user = viewer.get("/runs/?started_by=admin").context["runs"]
    assert len(by_user) == 50
    assert viewer.get("/runs/?started_by=schedule").context["runs"] == []


def test_admins_manage_device_credentials_audited_never_in_clear(client_for, mongo_uri):
    from oktoscripts.devices.client import default_credentials

    store = default_credentials()
    store.delete("cpe-user")
    assert client_for("operator").get("/credentials/").status_code == 403
    assert (
        client_for("operator")
        .post("/credentials/set", {"username": "cpe-user", "password": "s3cret-pass"})
        .status_code
        == 403
    )
    admin = client_for("admin")
    assert (
        admin.post(
            "/credentials/set", {"username": "cpe-user", "password": "s3cret-pass"}
        ).status_code
        == 302
    )
    assert store.verify_basic("cpe-user", "s3cret-pass")
    assert "s3cret-pass" not in str(store.collection.find_one({"username": "cpe-user"}))
    page = admin.get("/credentials/").content.decode()
    assert "cpe-user" in page and "s3cret-pass" not in page
    refused = admin.post("/credentials/set", {"username": "a.b", "password": "x"}, follow=True)
    assert "a.b" not in store.usernames() and refused.status_code == 200
    admin.post("/credentials/delete", {"username": "cpe-user"})
    assert not store.exists("cpe-user")
    events = list(
        AuditEvent.objects.filter(action__startswith="credential.").values_list("action", "target")
    )
    assert events == [("credential.delete", "cpe-user"), ("credential.create", "cpe-user")]
    assert all("s3cret" not in str(e.details) for e in AuditEvent.objects.all())


def test_device_page_offers_alias_and_delete_only_with_the_permissions(client_for, devices):
    admin = client_for("admin").get("/devices/ACME-0001/").content.decode()
    assert 'id="alias-form"' in admin and 'id="delete-device"' in admin
    operator = client_for("operator").get("/devices/ACME-0001/").content.decode()
    assert 'id="alias-form"' in operator and 'id="delete-device"' not in operator
    viewer = client_for("viewer").get("/devices/ACME-0001/").content.decode()
    assert 'id="alias-form"' not in viewer and 'id="delete-device"' not in viewer
    assert client_for("viewer").delete("/api/devices/ACME-0001").status_code == 403
    assert (
        client_for("operator")
        .patch("/api/devices/ACME-0001", {"alias": "x"}, content_type="application/json")
        .status_code
        == 200
    )


def test_pages_use_a_fixed_number_of_queries(client_for, users, django_assert_max_num_queries):
    from oktoscripts.runs.models import Run

    script = scripts.create_script(users["author"], "many", "return 1")
    for i in range(30):
        scripts.create_script(users["author"], f"other-{i}", "return 1", folder=f"f{i % 3}")
    version = script.latest
    Run.objects.bulk_create(
        Run(
            script_name="many",
            code="",
            started_by="user",
            user=users["admin"],
            script_version_id=version.pk,
            status="succeeded",
        )
        for _ in range(80)
    )
    viewer = client_for("viewer")
    for url in ("/runs/", f"/scripts/{script.pk}/", "/scripts/", "/audit/"):
        client = client_for("admin") if url == "/audit/" else viewer
        with django_assert_max_num_queries(12):
            assert client.get(url).status_code == 200


def test_chart_counts_runs_per_time_bucket_and_status(db):
    from datetime import timedelta

    from ide.runfilters import RunFilters
    from oktoscripts.runs.models import Run

    end = timezone.now().replace(microsecond=0)
    start = end - timedelta(hours=24)
    at = [
        (start + timedelta(minutes=30), "succeeded"),
        (start + timedelta(minutes=50), "succeeded"),
        (start + timedelta(hours=5, minutes=30), "failed"),
        (end - timedelta(minutes=6), "succeeded"),
        (start - timedelta(minutes=1), "failed"),
    ]
    Run.objects.bulk_create(
        Run(script_name="c", code="", started_by="cli", status=status, created=when)
        for when, status in at
    )
    chart = RunFilters(since=start, until=end).chart(buckets=24)["buckets"]
    assert chart[0]["succeeded"] == 2 and chart[5]["failed"] == 1
    assert chart[23]["succeeded"] == 1
    assert sum(sum(b.values()) for b in chart) == 4  # the one before the range is left out


def test_device_page_operations_start_a_run_for_operators_only(client_for, devices, nats_url):
    from oktoscripts.runs.models import Run

    page = client_for("operator").get("/devices/ACME-0001/").content.decode()
    assert "Reboot" in page and "Factory reset" in page
    assert 'id="operations"' not in client_for("viewer").get("/devices/ACME-0001/").content.decode()
    assert (
        client_for("viewer")
        .post("/devices/ACME-0001/operation", {"operation": "reboot"})
        .status_code
        == 403
    )
    response = client_for("operator").post("/devices/ACME-0001/operation", {"operation": "reboot"})
    assert response.status_code == 302 and response["Location"].startswith("/runs/")
    run = Run.objects.get(trigger="device ACME-0001: reboot")
    assert "send_cwmp_message(args.serial" in run.code and run.args == {"serial": "ACME-0001"}
    assert "ACME-0001" in client_for("viewer").get("/devices/ACME-0001/").content.decode()
    bad = client_for("operator").post("/devices/ACME-0001/operation", {"operation": "explode"})
    assert bad.status_code == 302 and not Run.objects.filter(trigger__contains="explode").exists()
