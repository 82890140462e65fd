"""The Settings page and /api/settings: Admins set the platform's default run
limits; runs started afterwards carry script override > platform > built-in."""

from __future__ import annotations

import dataclasses
import html as htmllib
import time
from pathlib import Path

import pytest
from django.test import Client

from ide.models import ApiToken
from oktoscripts.lua.limits import Limits
from oktoscripts.scripts import editing as scripts
from oktoscripts.scripts.models import AuditEvent

MIB = 1024 * 1024


def token_client(user) -> Client:
    _, raw = ApiToken.issue(user, "test")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def put(client: Client, body: dict):
    return client.put("/api/settings", body, content_type="application/json")


def test_admin_sets_defaults_on_the_page_and_runs_carry_them(client_for, users, nats_url):
    from oktoscripts.runs.models import Run

    admin = client_for("admin", enforce_csrf=True)
    page = admin.get("/settings/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Default run limits" in html and 'name="csrfmiddlewaretoken"' in html
    assert 'href="/settings/"' in html  # linked in the nav for admins
    saved = admin.post(
        "/settings/",
        {
            "csrfmiddlewaretoken": page.cookies["csrftoken"].value,
            "instructions": "5",
            "memory_bytes": "64",
            "wall_seconds": "12.5",
            "output_bytes": "",
            "default_runtime": "lua51",
        },
    )
    assert saved.status_code == 302, saved.content.decode()
    assert "Settings saved" in admin.get("/settings/").content.decode()

    script = scripts.create_script(users["author"], "uses-defaults", "return 1")
    assert script.runtime == "lua51"  # the platform's default runtime, as just set
    started = token_client(users["operator"]).post(
        "/api/runs", {"script_id": script.pk}, content_type="application/json"
    )
    assert started.status_code == 201, started.content
    run = Run.objects.get(pk=started.json()["id"])
    assert run.limits == {
        "instructions": 5_000_000,
        "memory_bytes": 64 * MIB,
        "wall_seconds": 12.5,
        "output_bytes": Limits.defaults().output_bytes,  # left empty: built-in
    }
    # What the worker builds from the stored Run is exactly that.
    assert Limits.with_overrides(run.limits) == Limits(
        5_000_000, 64 * MIB, 12.5, Limits.defaults().output_bytes
    )

    event = AuditEvent.objects.get(action="settings.change")
    assert event.actor_name == "admin"
    assert event.details["changes"]["wall_seconds"] == [None, 12.5]
    assert event.details["changes"]["memory_bytes"] == [None, 64 * MIB]
    assert event.details["changes"]["default_runtime"] == ["luajit", "lua51"]
    # The page shows who changed what, from and to.
    html = admin.get("/settings/").content.decode()
    assert "built-in</span> → <b>12.5 s</b>" in html and "by admin" in html
    # The editor's Details tab tells authors what an empty limit means now.
    editor = client_for("author").get(f"/scripts/{script.pk}/").content.decode()
    assert "Platform defaults: 12.5 s · 64 MiB · 5 million instructions" in editor


def test_script_override_wins_over_platform_setting(client_for, users, nats_url):
    from oktoscripts.runs.models import Run

    admin = token_client(users["admin"])
    assert (
        put(admin, {"limits": {"wall_seconds": 30, "instructions": 2_000_000}}).status_code == 200
    )
    script = scripts.create_script(users["author"], "own-limits", "return 1")
    scripts.update_script(users["author"], script, limits={"wall_seconds": 3})
    started = client_for("operator").post(
        "/api/runs", {"script_id": script.pk}, content_type="application/json"
    )
    assert started.status_code == 201, started.content
    run = Run.objects.get(pk=started.json()["id"])
    assert run.limits["wall_seconds"] == 3  # the script's own
    assert run.limits["instructions"] == 2_000_000  # the platform's
    assert run.limits["memory_bytes"] == Limits.defaults().memory_bytes  # built-in


def test_rest_settings_read_and_write(users):
    viewer = token_client(users["viewer"])
    got = viewer.get("/api/settings")
    assert got.status_code == 200
    body = got.json()
    assert body["limits"] == {
        "instructions": None,
        "memory_bytes": None,
        "wall_seconds": None,
        "output_bytes": None,
    }
    assert body["effective_limits"] == dataclasses.asdict(Limits.defaults())
    changed = put(token_client(users["admin"]), {"limits": {"output_bytes": 65536}})
    assert changed.status_code == 200 and changed.json()["changed"] == ["output_bytes"]
    after = viewer.get("/api/settings").json()
    assert after["effective_limits"]["output_bytes"] == 65536
    assert after["updated_by"] == "admin"
    # null puts a limit back to the built-in default.
    reset = put(token_client(users["superuser"]), {"limits": {"output_bytes": None}})
    assert reset.json()["effective_limits"]["output_bytes"] == Limits.defaults().output_bytes
    schema = viewer.get("/api/openapi.json").json()
    assert set(schema["paths"]["/api/settings"]) == {"get", "put"}
    assert schema["paths"]["/api/settings"]["put"]["x-required-capability"] == "administer"


@pytest.mark.parametrize("role", ["viewer", "author", "operator", "nobody"])
def test_other_roles_are_refused_on_page_and_api(client_for, users, role):
    client = client_for(role)
    assert client.get("/settings/").status_code == 403
    assert client.post("/settings/", {"wall_seconds": "1"}).status_code == 403
    assert 'href="/settings/"' not in client.get("/scripts/").content.decode()
    refused = put(token_client(users[role]), {"limits": {"wall_seconds": 1}})
    assert refused.status_code == 403 and "administer" in refused.json()["error"]
    assert not AuditEvent.objects.filter(action="settings.change").exists()
    assert (
        token_client(users["admin"]).get("/api/settings").json()["limits"]["wall_seconds"] is None
    )


def test_anonymous_is_sent_to_sign_in_and_api_needs_auth(db):
    assert Client().get("/settings/").status_code == 302
    assert Client().get("/api/settings").status_code == 401


def test_page_post_needs_csrf(client_for):
    refused = client_for("admin", enforce_csrf=True).post("/settings/", {"wall_seconds": "9"})
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"wall_seconds": "-5"}, "Wall-clock time must be a positive number"),
        ({"wall_seconds": "0"}, "Wall-clock time must be a positive number"),
        ({"memory_bytes": "lots"}, "Memory: enter a number of MiB, not 'lots'."),
        ({"memory_bytes": "999999"}, "Memory must be at most 16,384 MiB"),
        ({"wall_seconds": "100000"}, "Wall-clock time must be at most 86,400 s"),
        ({"output_bytes": "0.5"}, "Output must be at least 1 KiB"),
        ({"default_runtime": "python"}, "unknown runtime 'python' (use lua51 or luajit)"),
    ],
)
def test_bad_page_input_is_rejected_with_a_clear_message(client_for, form, message):
    admin = client_for("admin")
    answer = admin.post("/settings/", {"default_runtime": "lua51", **form})
    assert answer.status_code == 400
    html = htmllib.unescape(answer.content.decode())
    assert "Not saved" in html and message in html
    assert not AuditEvent.objects.filter(action="settings.change").exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"limits": {"wall_seconds": -1}}, "wall_seconds", "must be a positive number"),
        ({"limits": {"memory_bytes": "64"}}, "memory_bytes", "must be a number"),
        ({"limits": {"instructions": True}}, "instructions", "must be a number"),
        ({"limits": {"instructions": 10}}, "instructions", "at least 0.001 million"),
        ({"limits": {"cpu": 5}}, "cpu", "unknown limit"),
        ({"limits": [1]}, "limits", "an object"),
        ({"default_runtime": "lua54"}, "default_runtime", "unknown runtime"),
    ],
)
def test_bad_api_input_is_rejected_with_a_clear_message(users, body, field, message):
    answer = put(token_client(users["admin"]), body)
    assert answer.status_code == 400
    assert message in answer.json()["fields"][field]
    assert message in answer.json()["error"]


def test_api_rejects_unknown_settings_and_bad_json(users):
    admin = token_client(users["admin"])
    assert "unknown setting 'theme'" in put(admin, {"theme": "dark"}).json()["error"]
    bad = admin.put("/api/settings", "{", content_type="application/json")
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]


def test_saving_the_page_unchanged_records_nothing(client_for, users):
    """The form shows values exactly (no 1.04858e+06), so saving it back changes nothing."""
    assert (
        put(
            token_client(users["admin"]),
            {"limits": {"output_bytes": 1024 * MIB, "instructions": 12_345, "wall_seconds": 0.25}},
        ).status_code
        == 200
    )
    admin = client_for("admin")
    html = admin.get("/settings/").content.decode()
    assert 'value="1048576"' in html and 'value="0.012345"' in html and 'value="0.25"' in html
    assert "1,048,576 KiB" in html  # the allowed maximum, readable
    form = {
        "output_bytes": "1048576",
        "instructions": "0.012345",
        "wall_seconds": "0.25",
        "memory_bytes": "",
        "default_runtime": "luajit",
    }
    answer = admin.post("/settings/", form, follow=True)
    assert "Nothing changed." in answer.content.decode()
    assert AuditEvent.objects.filter(action="settings.change").count() == 1  # the PUT only


# --- In a real browser, against a real web process and worker -------------------------

from tests.browser_site import CHROMIUM, login, shot  # noqa: E402
from tests.ide.test_ide_browser import (  # noqa: E402 - the browser tests' platform
    PASSWORD,
    platform,  # noqa: F401 - fixture
)


def _api(page, base: str, method: str, path: str, body: dict | None = None) -> dict:
    """A REST call with the page's session and CSRF token, as the IDE's own JS makes it."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    answer = page.request.fetch(
        base + path, method=method, data=body, headers={"X-CSRFToken": token}
    )
    assert answer.ok, answer.text()
    return answer.json()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
@pytest.mark.timeout(300)
def test_settings_page_in_the_browser_limits_a_real_run(platform, browser):  # noqa: F811
    page = login(browser, platform, "admin1", PASSWORD)
    page.click("nav >> text=Settings")
    page.wait_for_selector("h1:has-text('Platform settings')")
    shot(page, "settings")
    page.fill("#s-memory_bytes", "-3")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector(".field-error")
    assert "Memory must be a positive number" in page.inner_text(".field-error")
    shot(page, "settings_error")
    page.fill("#s-memory_bytes", "")
    page.fill("#s-instructions", "0.01")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector(".messages li:has-text('Settings saved')")
    assert "0.01 million" in page.inner_text(".settings-change")
    shot(page, "settings_saved")

    # A run started afterwards is stopped by the worker at the platform's limit.
    script = _api(
        page, platform, "POST", "/api/scripts", {"name": "spin", "content": "while true do end"}
    )
    run = _api(page, platform, "POST", "/api/runs", {"script_id": script["id"]})
    deadline = time.monotonic() + 60
    while True:
        result = _api(page, platform, "GET", f"/api/runs/{run['id']}/result")
        if result["final"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert result["status"] == "limit_exceeded", result
    assert "instruction limit of 10000 instructions exceeded" in result["error"]["message"]
    # The editor's script details say what an empty limit falls back to.
    page.goto(f"{platform}/scripts/{script['id']}/")
    page.click("summary:has-text('⋯')")
    assert "Platform defaults: 600 s · 256 MiB · 0.01 million" in page.inner_text("details .card")
    shot(page, "settings_editor_details")
    page.close()

    viewer = login(browser, platform, "viewer1", PASSWORD)
    assert viewer.locator("nav >> text=Settings").count() == 0
    assert viewer.goto(platform + "/settings/").status == 403
    viewer.close()
