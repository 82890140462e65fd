"""The automation pages in a real browser (Playwright driving Debian's chromium)
against a real web process (daphne), a worker, a scheduler, NATS and MongoDB:
an Operator schedules, runs across devices, deploys a listener and adds a
trigger; an Author sees none of those controls and the server refuses them.

Screenshots go to /tmp/ide_shots/ (auto-*.png).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC

import pytest

from tests.automations.test_bulk import SCRIPT as PER_DEVICE
from tests.automations.test_bulk import register
from tests.browser_site import BROWSER_TEST, login, running_site, shot
from tests.ide.test_ide_browser import PASSWORD, _api_status

pytestmark = BROWSER_TEST

WATCHER = """
listen_to_cwmp_event("2", nil, function(ev) print("periodic from " .. ev.serial_number) end, 2)
print("listening")
"""
SCRIPTS = {
    "per-device": PER_DEVICE,
    "watcher": WATCHER,
    "nightly": "print('nightly')\nreturn 1\n",
    "on-boot": "local a = ...\nprint('boot of ' .. a.serial)\nreturn a.serial\n",
}
CRON, ZONE = "0 3 * * *", "Europe/Paris"


@pytest.fixture(autouse=True)
def close_async_db_connections() -> None:
    """Replaces the package's autouse async fixture: these tests use no async ORM, and
    the sync Playwright API keeps an event loop running in this thread."""


@pytest.fixture(scope="module")
def site(tmp_path_factory, nats_url, mongo_uri):
    """The platform's processes on their own SQLite database, the session's NATS and
    MongoDB; an Admin who wrote the scripts, an Operator and an Author."""
    setup = (
        "from django.contrib.auth.models import User, Group\n"
        "from oktoscripts.scripts.editing import create_script\n"
        "users = {}\n"
        "for name in ('Admin', 'Operator', 'Author'):\n"
        f"    users[name] = User.objects.create_user(name.lower() + '1', password='{PASSWORD}')\n"
        "    users[name].groups.add(Group.objects.get(name=name))\n"
        f"for name, content in {SCRIPTS!r}.items():\n"
        "    create_script(users['Admin'], name, content)\n"
    )
    processes = {
        "worker": ["worker", "--lua-threads", "2"],
        "scheduler": ["scheduler", "--interval", "0.3"],
    }
    data = tmp_path_factory.mktemp("automation-pages")
    with running_site(data, nats_url, mongo_uri, setup, processes) as base:
        yield base


def _reload_until(page, selector: str, text: str, timeout: float = 60) -> None:
    """Reload until ``selector`` shows ``text`` (pages that do not refresh by themselves)."""
    deadline = time.monotonic() + timeout
    while text not in page.inner_text(selector):
        assert time.monotonic() < deadline, f"{selector} never showed {text!r}"
        time.sleep(0.5)
        page.reload()


def _api(page, method: str, url: str, body: dict | None = None) -> dict:
    """A request from the page as its user (session cookie and CSRF token)."""
    return page.evaluate(
        "([m, u, b]) => Okto.api(m, u, b === null ? undefined : b)", [method, url, body]
    )


def _publish(nats_url: str, serial: str, *codes: str) -> None:
    """A CWMP event on the bus, as the ACS publishes it (in a thread: the sync
    Playwright API keeps this thread's event loop)."""
    from oktoscripts.bus.connection import connect
    from tests.automations.test_triggers import publish

    async def send() -> None:
        nc = await connect("tests", nats_url)
        try:
            await publish(nc, serial, *codes)
        finally:
            await nc.close()

    thread = threading.Thread(target=asyncio.run, args=(send(),))
    thread.start()
    thread.join(30)


def test_operator_schedules_with_a_time_zone_and_disables_and_enables(site, browser):
    from oktoscripts.automations import schedules

    page = login(browser, site, "operator1", PASSWORD)
    page.goto(site + "/automations/")
    form = page.locator("#new-schedule")
    form.locator("input[name=name]").fill("nightly inventory")
    form.locator("select[name=script_id]").select_option(label="nightly")
    form.locator("input[name=timezone]").fill(ZONE)
    form.locator("input[name=cron]").fill(CRON)
    # The next run times show while typing, in the schedule's zone.
    expected = schedules.preview(CRON, ZONE, 5)
    page.wait_for_selector("#cron-preview:has-text('Next runs')")
    assert expected[0].isoformat() in page.inner_text("#cron-preview")
    shot(page, "auto-01-schedule-preview")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("table.grid tr:has-text('nightly inventory')")
    row = page.locator("table.grid tr:has-text('nightly inventory')")
    assert "enabled" in row.inner_text() and ZONE in row.inner_text()
    assert expected[0].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") in row.inner_text()

    # The schedule's page lists the next runs at 03:00 in Paris, as they were set.
    row.locator("a").click()
    page.wait_for_selector("h1:has-text('nightly inventory')")
    upcoming = page.locator(".card:has(h2:has-text('Next runs')) li")
    assert upcoming.count() == 10
    first = expected[0].strftime("%Y-%m-%d %H:%M:%S")
    assert first in upcoming.first.inner_text(), upcoming.first.inner_text()
    assert all("03:00:00" in text for text in upcoming.all_inner_texts())
    shot(page, "auto-02-schedule-page")

    page.click("button:has-text('Disable')")
    page.wait_for_selector(".page-head .badge:has-text('disabled')")
    assert "Disabled: no runs." in page.inner_text("body")
    page.goto(site + "/automations/")
    row = page.locator("table.grid tr:has-text('nightly inventory')")
    assert "disabled" in row.inner_text() and "—" in row.inner_text()
    row.locator("button:has-text('Enable')").click()
    page.wait_for_selector("table.grid tr:has-text('nightly inventory') .badge:has-text('enabled')")
    assert "UTC" in page.locator("table.grid tr:has-text('nightly inventory')").inner_text()

    # Edit the cron expression on the schedule's page: the preview follows.
    page.locator("table.grid tr:has-text('nightly inventory') a").click()
    page.fill("#edit-schedule input[name=cron]", "30 4 * * 1")
    page.click("#edit-schedule button[type=submit]")
    page.wait_for_selector(".page-head .sub:has-text('30 4 * * 1')")
    texts = page.locator(".card:has(h2:has-text('Next runs')) li").all_inner_texts()
    assert texts and all(t.startswith("Mon ") and "04:30:00" in t for t in texts)
    page.close()


def test_operator_runs_a_script_on_every_matching_device(site, browser, registry):
    sync_api = pytest.importorskip("playwright.sync_api")
    register(registry)  # ACME-001..012 (ACME-007 fails in the script) and OTHER-1..3
    page = login(browser, site, "operator1", PASSWORD)
    page.goto(site + "/automations/")
    form = page.locator("#new-bulk")
    form.locator("select[name=script_id]").select_option(label="per-device")
    form.locator("input[name=vendor]").fill("Acme")
    form.locator("input[name=concurrency]").fill("3")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/automations/bulk/*/")
    assert "Acme" in page.inner_text(".page-head .sub")

    page.wait_for_selector("#bulk-status:text-is('finished')", timeout=90_000)
    counts = page.inner_text("#bulk-counts")
    assert counts.startswith("12 of 12 done (100%)"), counts
    assert "11 succeeded" in counts and "1 failed" in counts
    assert page.locator("#bulk-bar").evaluate("el => el.style.width") == "100%"
    rows = page.locator("#bulk-items tr")
    assert rows.count() == 12
    assert "OTHER" not in page.inner_text("#bulk-items")
    ok = page.locator("#bulk-items tr:has-text('ACME-001')").inner_text()
    assert "succeeded" in ok and '"sn":"ACME-001"' in ok.replace(" ", "")
    broken = page.locator("#bulk-items tr:has-text('ACME-007')").inner_text()
    assert "failed" in broken and "this one breaks" in broken
    shot(page, "auto-03-bulk-finished")

    assert page.locator("#bulk-stop").is_disabled()  # nothing left to stop

    # Only the failed ones; an answer for the previous filter arriving late does
    # not bring the other rows back.
    page.select_option("#bulk-filter", "failed")
    # (Not wait_for_function: it evaluates a string, which the pages' CSP refuses.)
    sync_api.expect(page.locator("#bulk-items tr")).to_have_count(1)
    held = []
    page.route(
        lambda url: "/api/bulk-runs/" in url and "status=" not in url,
        lambda route: held.append(route),
    )
    page.select_option("#bulk-filter", "")
    deadline = time.monotonic() + 10
    while not held:
        assert time.monotonic() < deadline, "the page asked for no rows"
        page.wait_for_timeout(50)
    with page.expect_response(lambda r: "status=failed" in r.url):
        page.select_option("#bulk-filter", "failed")
    with page.expect_response(lambda r: "/api/bulk-runs/" in r.url) as late:
        held[0].continue_()
    late.value.finished()
    page.evaluate("() => new Promise(r => setTimeout(() => setTimeout(r)))")  # it is handled
    assert page.locator("#bulk-items tr").count() == 1
    page.unroute_all()

    # Retry the failed ones: ACME-007 runs (and fails) once more.
    page.select_option("#bulk-filter", "")
    page.click("#bulk-retry")
    page.wait_for_selector(
        "#bulk-items tr:has-text('ACME-007') td:nth-child(3):text-is('2')", timeout=60_000
    )
    page.wait_for_selector("#bulk-status:text-is('finished')", timeout=60_000)
    assert "1 failed" in page.inner_text("#bulk-counts")

    # Run pages are one click away.
    page.click("#bulk-items tr:has-text('ACME-001') a")
    page.wait_for_url("**/runs/*/")
    page.close()


def test_operator_deploys_a_listener_and_stops_it(site, browser, nats_url):
    page = login(browser, site, "operator1", PASSWORD)
    page.goto(site + "/automations/")
    form = page.locator("#new-deployment")
    form.locator("input[name=name]").fill("periodic watcher")
    form.locator("select[name=script_id]").select_option(label="watcher")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/automations/deployments/*/")
    # The page refreshes itself until the run listens.
    page.wait_for_selector(".page-head .badge:text-is('listening')", timeout=60_000)
    assert "v1 (pinned)" in page.inner_text(".page-head .sub")

    _publish(nats_url, "ACME-042", "2 PERIODIC")
    page.wait_for_selector("dt:text-is('Events handled') + dd:text-is('1')", timeout=30_000)
    page.wait_for_selector("pre:has-text('periodic from ACME-042')", timeout=30_000)
    assert "ACME-042" in page.inner_text(".card:has(h2:has-text('Last events'))")
    shot(page, "auto-04-deployment-listening")

    page.click(".page-head button:has-text('Stop')")
    page.wait_for_selector(".page-head .badge:text-is('stopped')", timeout=30_000)
    assert page.locator(".page-head button:has-text('Start')").count() == 1
    page.goto(site + "/automations/")
    row = page.locator("table.grid tr:has-text('periodic watcher')")
    assert "stopped" in row.inner_text() and row.locator("button:has-text('Start')").count() == 1
    page.close()


def test_operator_adds_an_event_trigger_that_fires_and_disables_it(
    site, browser, registry, nats_url
):
    register(registry)
    page = login(browser, site, "operator1", PASSWORD)
    page.goto(site + "/automations/")
    form = page.locator("#new-trigger")
    form.locator("input[name=name]").fill("on boot")
    form.locator("input[name=event]").fill("1 BOOT")
    form.locator("input[name=vendor]").fill("Acme")
    form.locator("select[name=script_id]").select_option(label="on-boot")
    form.locator("button[type=submit]").click()
    row = "table.grid tr:has-text('on boot')"
    page.wait_for_selector(row)
    assert "vendor=Acme" in page.inner_text(row) and "enabled" in page.inner_text(row)

    # (The trigger's consumer starts at the trigger's creation: no event is missed
    # while the scheduler sets it up.)
    _publish(nats_url, "OTHER-1", "1 BOOT")  # not an Acme device
    _publish(nats_url, "ACME-002", "1 BOOT")
    _reload_until(page, f"{row} td.num", "1")
    page.goto(site + "/runs/?script=on-boot")
    page.wait_for_selector("table.grid tbody tr")
    assert page.locator("table.grid tbody tr").count() == 1  # none for OTHER-1
    page.goto(site + "/automations/")
    page.locator(f"{row} button:has-text('Disable')").click()
    page.wait_for_selector(f"{row} .badge:text-is('disabled')")
    page.close()


def test_author_gets_no_automation_controls_and_is_refused(site, browser, registry):
    register(registry)
    operator = login(browser, site, "operator1", PASSWORD)
    operator.goto(site + "/automations/")
    scripts = {s["name"]: s["id"] for s in _api(operator, "GET", "/api/scripts")["scripts"]}
    schedule = _api(
        operator,
        "POST",
        "/api/schedules",
        {
            "name": "author cannot touch",
            "script_id": scripts["nightly"],
            "cron": CRON,
            "timezone": ZONE,
        },
    )
    bulk = _api(
        operator,
        "POST",
        "/api/bulk-runs",
        {"script_id": scripts["per-device"], "device_filter": {"text": "OTHER-1"}},
    )
    deployment = _api(
        operator,
        "POST",
        "/api/deployments",
        {"name": "author watch", "script_id": scripts["watcher"]},
    )
    operator.close()

    page = login(browser, site, "author1", PASSWORD)
    page.goto(site + "/automations/")
    for form in ("#new-schedule", "#new-deployment", "#new-trigger", "#new-bulk"):
        assert page.locator(form).count() == 0, form
    assert (
        page.locator("[data-toggle-schedule], [data-deployment], [data-toggle-trigger]").count()
        == 0
    )
    assert "author cannot touch" in page.inner_text("table.grid")
    shot(page, "auto-05-author-index")
    page.goto(f"{site}/automations/schedules/{schedule['id']}/")
    assert page.locator("[data-toggle-schedule], #delete-schedule, #edit-schedule").count() == 0
    page.goto(f"{site}/automations/bulk/{bulk['id']}/")
    assert page.locator("#bulk-stop, #bulk-retry").count() == 0
    page.goto(f"{site}/automations/deployments/{deployment['id']}/")
    assert page.locator("[data-deployment], #delete-deployment").count() == 0

    # Posting anyway: refused, and nothing changed.
    refused = [
        ("POST", "/api/schedules", {"name": "x", "script_id": scripts["nightly"], "cron": CRON}),
        ("PATCH", f"/api/schedules/{schedule['id']}", {"enabled": False}),
        ("DELETE", f"/api/schedules/{schedule['id']}", {}),
        ("POST", "/api/bulk-runs", {"script_id": scripts["per-device"]}),
        ("POST", f"/api/bulk-runs/{bulk['id']}/retry", {}),
        ("POST", "/api/deployments", {"script_id": scripts["watcher"]}),
        ("POST", f"/api/deployments/{deployment['id']}/stop", {}),
        (
            "POST",
            "/api/triggers",
            {"name": "x", "kind": "new_device", "script_id": scripts["on-boot"]},
        ),
    ]
    for method, url, body in refused:
        assert _api_status(page, method, url, body) == 403, (method, url)
    assert _api(page, "GET", f"/api/schedules/{schedule['id']}")["enabled"] is True
    assert _api(page, "GET", f"/api/deployments/{deployment['id']}")["desired"] == "running"
    page.close()
