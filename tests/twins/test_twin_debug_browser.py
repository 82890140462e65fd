"""Debugging against a device twin in a real browser: the editor's target
selector names a built-in demo twin, Debug pauses at a breakpoint with the
twin's serial in the variables, a step over the device call shows the twin's
answer, and the run ends with the twin's values. Real web process, worker,
ACS and twin host (``twins run --demo``), NATS and MongoDB."""

from __future__ import annotations

import os
import time

import pytest

from tests.browser_site import BROWSER_TEST, SHOTS, free_port, login, running_site
from tests.ide import test_debugger_browser as _debugger

pytestmark = BROWSER_TEST
PASSWORD = "twin-debug-pass-53"
TWIN = "DEMO181GW0001"
SCRIPT = r"""local serial = args.serial
local path = "Device.WiFi.SSID.1.SSID"
local answer = send_cwmp_message(serial, "<cwmp:GetParameterValues><ParameterNames><string>"
  .. path .. "</string></ParameterNames></cwmp:GetParameterValues>", 0)
local ssid = answer[path]
print("ssid is " .. tostring(ssid))
return {serial = serial, ssid = ssid}
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory, nats_url, mongo_uri):
    setup = (
        "from django.contrib.auth.models import User, Group\n"
        "from oktoscripts.scripts import editing\n"
        f"u = User.objects.create_user('admin1', password='{PASSWORD}')\n"
        "u.groups.add(Group.objects.get(name='Admin'))\n"
        f"editing.create_script(u, 'ssid-of', {SCRIPT!r})\n"
    )
    acs_port = free_port()
    settings = {
        "OKTOSCRIPTS_ACS_PORT": str(acs_port),
        "OKTOSCRIPTS_ACS_TLS_PORT": "off",
        "OKTOSCRIPTS_ACS_HOST": "127.0.0.1",
    }
    processes = {"worker": ["worker"], "acs": ["acs"], "twins": ["twins", "run", "--demo"]}
    data = tmp_path_factory.mktemp("twin-debug")
    with running_site(data, nats_url, mongo_uri, setup, processes, settings) as base:
        yield base


def _twin_online(mongo_uri: str) -> bool:
    import pymongo

    client = pymongo.MongoClient(mongo_uri)
    try:
        device = client[os.environ["OKTOSCRIPTS_MONGO_DB"]].devices.find_one({"_id": TWIN})
        return bool(device and device.get("status") == 2)
    finally:
        client.close()


def test_debug_a_script_against_a_twin_chosen_as_the_target(site, browser, mongo_uri):
    deadline = time.monotonic() + 60
    while not _twin_online(mongo_uri):
        assert time.monotonic() < deadline, "the demo twin never came online"
        time.sleep(0.3)
    page = login(browser, site, "admin1", PASSWORD)
    page.click("text=ssid-of")
    page.wait_for_selector("#editor .ace_content")
    page.wait_for_selector(f"#twin-target option[value='{TWIN}']", state="attached")
    page.select_option("#twin-target", TWIN)
    _debugger._gutter_click(page, 3)
    page.wait_for_selector("#dbg-bps .dbg-bp[data-line='3']", state="attached")

    page.click("#debug-btn")
    page.wait_for_selector("#dbg-state.paused:has-text('Paused at line 3')", timeout=60_000)
    serial = page.locator("#dbg-vars li:has(> .dbg-name:text-is('serial'))")
    assert TWIN in serial.inner_text()
    page.click("#dbg-over")
    page.wait_for_selector("#dbg-state.paused:has-text('Paused at line 5')", timeout=60_000)
    page.click("#dbg-calls summary")
    assert "oktodemo-2g" in page.inner_text("#dbg-calls pre.dbg-answer")
    page.screenshot(path=str(SHOTS / "twin-debug-paused.png"))
    page.click("#dbg-over")
    page.wait_for_selector("#dbg-state.paused:has-text('Paused at line 6')", timeout=60_000)
    page.wait_for_selector("#dbg-vars li:has(> .dbg-name:text-is('ssid'))")
    assert "oktodemo-2g" in page.inner_text("#dbg-vars li:has(> .dbg-name:text-is('ssid'))")

    page.keyboard.press("F5")
    page.wait_for_selector("#dbg-state:has-text('Ended: succeeded')", timeout=60_000)
    page.click(".side-tabs button[data-pane='pane-run']")
    page.wait_for_selector("#console .line:has-text('ssid is oktodemo-2g')", timeout=30_000)
    page.wait_for_selector("#result table.value", timeout=30_000)
    assert TWIN in page.inner_text("#result")
    page.close()
