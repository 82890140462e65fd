"""Field operations in a real browser (Playwright driving Debian's chromium)
against a real web process, worker, scheduler, ACS and simulated CPEs, NATS
and MongoDB: a device page's Reboot, Factory reset and Download firmware
(with an image uploaded on the Files page), and a staged rollout's page:
approval by a second person (never the requester), pause, resume, stop."""

from __future__ import annotations

import os
import time

import pytest

from oktoscripts.sim.cwmp_day2 import firmware_image
from tests.browser_site import (
    BROWSER_TEST,
    SHOTS,
    acs_with_simulated_cpes,
    login,
    running_site,
)

pytestmark = BROWSER_TEST
PASSWORD = "field-ops-pass-53"
PREFIX = f"FOPS{os.getpid() % 1000:03d}"
SLOW = "sleep(1.5)\nreturn args.serial\n"  # a rollout slow enough to pause


@pytest.fixture(scope="module")
def site(tmp_path_factory, nats_url, mongo_uri):
    setup = (
        "from django.contrib.auth.models import User, Group\n"
        "from oktoscripts.automations.models import RolloutPolicy\n"
        "from oktoscripts.scripts import editing\n"
        "for name, role in (('operator1', 'Operator'), ('operator2', 'Operator'),"
        " ('viewer1', 'Viewer')):\n"
        f"    u = User.objects.create_user(name, password='{PASSWORD}')\n"
        "    u.groups.add(Group.objects.get(name=role))\n"
        "policy = RolloutPolicy.load()\n"
        "policy.approval_above = 1\n"
        "policy.save()\n"
        f"s = editing.create_script(User.objects.get(username='operator1'), 'slow-rollout',"
        f" {SLOW!r})\n"
    )
    settings, processes = acs_with_simulated_cpes(PREFIX, 3)
    processes.update(worker=["worker"], scheduler=["scheduler", "--interval", "0.3"])
    data = tmp_path_factory.mktemp("field-ops-browser")
    with running_site(data, nats_url, mongo_uri, setup, processes, settings) as base:
        yield base


@pytest.fixture(scope="module")
def devices(mongo_uri):
    """The devices collection, once the simulated CPEs are online with their
    connection-request credentials."""
    import pymongo

    client = pymongo.MongoClient(mongo_uri, tz_aware=True)
    col = client[os.environ["OKTOSCRIPTS_MONGO_DB"]].devices
    query = {
        "_id": {"$regex": f"^{PREFIX}"},
        "status": 2,
        "cwmp.connection_request.password": {"$exists": 1},
    }
    deadline = time.monotonic() + 60
    while col.count_documents(query) < 3:
        assert time.monotonic() < deadline, "the simulated CPEs never came online"
        time.sleep(0.3)
    yield col
    client.close()


def _login(browser, base: str, username: str):
    page = login(browser, base, username, PASSWORD)
    page.on("dialog", lambda dialog: dialog.accept())  # the forms' "Reboot this device?"
    return page


def _eventually(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.3)


def _operate(page, site: str, serial: str, button: str) -> None:
    """Press a device page's operation button; its run must succeed."""
    if not page.url.endswith(f"/devices/{serial}/"):
        page.goto(f"{site}/devices/{serial}/")
    page.click(f"#operations button:has-text('{button}')")
    page.wait_for_url("**/runs/**")
    page.wait_for_selector("#run-status.succeeded", timeout=90_000)


def test_device_page_reboot_factory_reset_and_firmware_download(site, browser, devices, tmp_path):
    serials = sorted(d["_id"] for d in devices.find({"_id": {"$regex": f"^{PREFIX}"}}))
    viewer = _login(browser, site, "viewer1")
    viewer.goto(f"{site}/devices/{serials[0]}/")
    assert viewer.locator("#operations").count() == 0  # no operations for a Viewer
    viewer.close()

    page = _login(browser, site, "operator1")
    image = tmp_path / "fw-8.0.0.bin"
    image.write_bytes(firmware_image("8.0.0"))
    page.goto(site + "/files/")
    # The upload form's fields (each stored file's delete form has a hidden "name"
    # too, and the store may hold files of earlier tests).
    page.set_input_files("#f-file", str(image))
    page.fill("#f-name", "fw-8.0.0.bin")
    page.click("form[action$='/files/upload'] button[type=submit]")
    page.wait_for_selector("text=store:fw-8.0.0.bin")

    page.goto(f"{site}/devices/{serials[0]}/")
    page.select_option("#operations select[name=file]", "fw-8.0.0.bin")
    _operate(page, site, serials[0], "Download firmware")
    page.screenshot(path=str(SHOTS / "device-download-run.png"), full_page=True)
    _eventually(
        lambda: devices.find_one({"_id": serials[0]}).get("version") == "8.0.0",
        what="the CPE reports firmware 8.0.0",
    )

    _operate(page, site, serials[1], "Reboot")
    _eventually(
        lambda: (
            "M Reboot" in (devices.find_one({"_id": serials[1]})["cwmp"].get("last_events") or [])
        ),
        what="the CPE informs after its reboot",
    )
    _operate(page, site, serials[2], "Factory reset")
    _eventually(
        lambda: (
            "0 BOOTSTRAP"
            in (devices.find_one({"_id": serials[2]})["cwmp"].get("last_events") or [])
        ),
        what="the CPE bootstraps after its factory reset",
    )
    page.goto(f"{site}/devices/{serials[0]}/")
    assert "8.0.0" in page.inner_text("main")
    page.close()


def _api(page, method: str, url: str, body: dict | None = None) -> dict:
    return page.evaluate(
        """async ([method, url, body]) => { const r = await fetch(url, {method,
             credentials: 'same-origin', headers: {'Content-Type': 'application/json',
             'X-CSRFToken': decodeURIComponent(
             (document.cookie.match(/(?:^|;\\s*)csrftoken=([^;]+)/) || [])[1] || '')},
             body: body ? JSON.stringify(body) : undefined});
             return {status: r.status, body: await r.json()}; }""",
        [method, url, body],
    )


def _status(page) -> str:
    return page.inner_text("#bulk-status")


def test_rollout_page_approval_by_a_second_person_pause_resume_stop(site, browser, devices):
    requester = _login(browser, site, "operator1")
    scripts = _api(requester, "GET", "/api/scripts")["body"]
    script_id = next(s["id"] for s in scripts["scripts"] if s["name"] == "slow-rollout")
    created = _api(
        requester,
        "POST",
        "/api/bulk-runs",
        {
            "script_id": script_id,
            "device_filter": {"text": PREFIX},
            "concurrency": 1,
            "wave_size": 1,
            "wave_pause_s": 1,
        },
    )
    assert created["status"] == 201, created
    bulk_url = f"{site}/automations/bulk/{created['body']['id']}/"
    requester.goto(bulk_url)
    requester.wait_for_selector("#bulk-status:has-text('approval')")
    assert "Awaiting the approval of a second person" in requester.inner_text("#bulk-reason")
    requester.click("#bulk-approve")  # the requester may not approve their own
    requester.wait_for_selector("#auto-error:visible")
    assert "cannot be the person who requested" in requester.inner_text("#auto-error")
    assert _status(requester) == "approval"

    approver = _login(browser, site, "operator2")
    approver.goto(bulk_url)
    approver.click("#bulk-approve")
    approver.wait_for_selector("#bulk-status:has-text('running')")
    approver.wait_for_selector("#bulk-approved:has-text('Approved by operator2')")
    approver.click("#bulk-pause")
    approver.wait_for_selector("#bulk-status:has-text('paused')")
    approver.wait_for_selector("#bulk-resume:visible")
    assert approver.locator("#bulk-pause:visible").count() == 0
    approver.click("#bulk-resume")
    approver.wait_for_selector("#bulk-status:has-text('running')")
    approver.click("#bulk-stop")
    approver.wait_for_selector("#bulk-status:has-text('stopped')", timeout=30_000)
    approver.wait_for_selector("#bulk-reason:has-text('stopped by operator2')")
    approver.screenshot(path=str(SHOTS / "rollout-stopped.png"), full_page=True)
    counts = approver.inner_text("#bulk-counts")
    assert "stopped" in counts, counts
    requester.close()
    approver.close()
