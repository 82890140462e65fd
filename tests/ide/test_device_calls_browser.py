"""Device calls in the console and on the run page's timeline, in Debian's
chromium against a real web process, worker, ACS and a simulated CPE: a call
line opens in place to the SOAP request the ACS sends and the answer the
script got, while the run still runs (asked of its worker) and after it ended
(from its recording); a bar of the timeline opens its call's line.
"""

from __future__ import annotations

import time

import pytest

from tests.browser_site import BROWSER_TEST, acs_with_simulated_cpes, login, running_site

PASSWORD = "wire-view-pass-5521"
SERIAL = "WIRESIM000000"


def _gpv(path: str) -> str:
    return (
        f"'<cwmp:GetParameterValues><ParameterNames><string>{path}</string>"
        "</ParameterNames></cwmp:GetParameterValues>'"
    )


SCRIPT = f"""local serial = "{SERIAL}"
local got = send_cwmp_message(serial, {_gpv("Device.DeviceInfo.SerialNumber")}, 0)
print("serial " .. tostring(got["Device.DeviceInfo.SerialNumber"]))
local bad = send_cwmp_message(serial, {_gpv("Device.NoSuch.Thing")}, 0)
print("fault " .. tostring(bad.error_code))
sleep(300)
"""

pytestmark = BROWSER_TEST


@pytest.fixture(scope="module")
def platform(tmp_path_factory, nats_url, mongo_uri):
    setup = (
        "from django.contrib.auth.models import User, Group\n"
        "from oktoscripts.scripts.editing import create_script\n"
        f"u = User.objects.create_user('admin1', password='{PASSWORD}')\n"
        "u.groups.add(Group.objects.get(name='Admin'))\n"
        f"create_script(u, 'wire', {SCRIPT!r})\n"
    )
    data = tmp_path_factory.mktemp("wire-var")
    settings, processes = acs_with_simulated_cpes("WIRESIM", 1)
    processes["worker"] = ["worker"]
    with running_site(data, nats_url, mongo_uri, setup, processes, settings) as base:
        yield base


@pytest.fixture(scope="module")
def page(platform, browser):
    page = login(browser, platform, "admin1", PASSWORD)
    yield page
    assert not page.errors
    page.close()


# Whether the simulated CPE has informed the ACS (a run started before would find no device).
DEVICE_ONLINE = f"""async () => {{
  const res = await fetch('/api/devices/{SERIAL}');
  return res.ok && (await res.json()).status === 2;
}}"""


def _wait_device_online(page, timeout_s: float = 60.0) -> None:
    """Asked again until true. Not page.wait_for_function: it takes the Promise
    an async predicate returns as a true value and never waits."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(DEVICE_ONLINE):
        if time.monotonic() > deadline:
            pytest.fail(f"{SERIAL} did not come online in {timeout_s:g} s")
        time.sleep(0.3)


# Runs the script "wire" over REST with the page's session; the run's id.
START_RUN = """async () => {
  const scripts = (await (await fetch('/api/scripts')).json()).scripts;
  const csrf = document.cookie.match(/csrftoken=([^;]+)/)[1];
  const res = await fetch('/api/runs', {method: 'POST', headers: {'Content-Type':
    'application/json', 'X-CSRFToken': csrf}, body: JSON.stringify(
    {script_id: scripts.find(s => s.name === 'wire').id})});
  return (await res.json()).id;
}"""


def _open_call(page, n: int):
    """Open the n-th device call line of the console; its opened row."""
    row = page.locator("#console .line.call").nth(n - 1)
    row.locator("button.open-call").click()
    opened = page.locator("#console .line.call.open").filter(has=page.locator(".wire-part"))
    opened.first.wait_for(timeout=30_000)
    return opened


def test_call_lines_open_to_the_wire_while_running_and_after(platform, page):
    _wait_device_online(page)
    run_id = page.evaluate(START_RUN)
    page.goto(f"{platform}/runs/{run_id}/")
    try:
        page.wait_for_selector("#console .line:has-text('fault 9005')", timeout=90_000)
    except Exception:  # noqa: BLE001 - say what the run did instead
        first = page.evaluate(f"async () => (await fetch('/api/runs/{run_id}/calls/1')).text()")
        pytest.fail(
            f"the run did not get the CPE's fault: {page.inner_text('#run-status')}, "
            f"console: {page.inner_text('#console')[-1000:]}, first call: {first}"
        )
    assert page.inner_text("#run-status") == "running"

    # While it runs: the worker holding it answers.
    opened = _open_call(page, 1)
    request = opened.locator(".wire-part[data-part=request] pre").inner_text()
    assert "<cwmp:GetParameterValues>" in request
    assert "<string>Device.DeviceInfo.SerialNumber</string>" in request
    assert "soap-env:Envelope" in request
    answer = opened.locator(".wire-part[data-part=answer] pre").inner_text()
    assert SERIAL in answer
    assert "line 2" in opened.locator(".wire-head").inner_text()

    # The timeline draws both calls on the device's lane while the run goes on.
    page.wait_for_selector("#timeline .lane[data-device='WIRESIM000000'] .bar >> nth=1")
    bars = page.locator("#timeline .bar")
    assert "GetParameterValues" in bars.nth(0).inner_text()
    assert "L4" in bars.nth(1).inner_text() and "failed" in bars.nth(1).get_attribute("title")
    # A click on a bar opens its line in the console: the fault, as the CPE sent it.
    bars.nth(1).click()
    fault = page.locator("#console .line.call.open").nth(1)
    fault.locator(".wire-part[data-part=answer] pre").wait_for()
    answer = fault.locator(".wire-part[data-part=answer] pre").inner_text()
    assert "9005" in answer and "Fault" in answer
    assert "(XML)" in fault.locator(".wire-part[data-part=answer] .wire-label").inner_text()

    # Closing folds it back to one line.
    fault.locator("button.open-call").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#console .line.call.open').length === 1"
    )

    # After the run: the stored recording answers the same.
    page.click("#cancel-btn")
    page.wait_for_selector("#run-status.cancelled", timeout=30_000)
    page.reload()
    page.wait_for_selector("#timeline .bar >> nth=1")
    opened = _open_call(page, 1)
    assert (
        "Device.DeviceInfo.SerialNumber"
        in opened.locator(".wire-part[data-part=request] pre").inner_text()
    )
    page.locator("#timeline .bar").nth(1).click()
    page.wait_for_function(
        "() => document.querySelectorAll('#console .line.call.open .wire-part').length === 4"
    )
