"""The IDE in a real browser (Playwright driving Debian's chromium) against a
real web process (daphne), a real worker, NATS and MongoDB.

Screenshots of every page go to /tmp/ide_shots/.
"""

from __future__ import annotations

import pytest

from tests.browser_site import BROWSER_TEST, login, running_site, shot

PASSWORD = "browser-test-pass-91"

pytestmark = BROWSER_TEST

BROKEN = """-- inventory
local devices = get_all_devices(
print("count", #devices)
"""
FIXED = """-- inventory
local rows = {}
for i = 1, 3 do
  print("checking device " .. i)
  rows[#rows + 1] = {serial = "SN-" .. i, online = i ~= 2, uptime = i * 100}
end
log("info", "done with", #rows, "devices")
return rows
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory, nats_url, mongo_uri):
    setup = (
        "from django.contrib.auth.models import User, Group\n"
        f"for name in ('Admin', 'Viewer', 'Operator'):\n"
        f"    u = User.objects.create_user(name.lower() + '1', password='{PASSWORD}')\n"
        "    u.groups.add(Group.objects.get(name=name))\n"
    )
    data = tmp_path_factory.mktemp("browser-var")
    with running_site(data, nats_url, mongo_uri, setup, {"worker": ["worker"]}) as base:
        yield base


def _login(browser, base: str, username: str):
    return login(browser, base, username, PASSWORD)


def test_write_check_save_run_history_diff_restore(platform, browser):
    base = platform
    page = _login(browser, base, "admin1")
    shot(page, "01-scripts-empty")

    page.fill("input[name=name]", "inventory")
    page.fill("#new-script input[name=folder]", "ops")
    page.click("#new-script button[type=submit]")
    page.wait_for_selector("#editor .ace_content")
    editor_url = page.url
    # The template is unsaved text; saving it as it is makes version 1.
    assert page.inner_text("#version-label") == "not saved yet"
    page.click("#save-btn")
    page.wait_for_selector("#save-state:has-text('saved')")
    assert "v1" in page.inner_text("#version-label")

    # A syntax error is marked inline and listed.
    page.evaluate("src => oktoEditor.setValue(src, 1)", BROKEN)
    page.wait_for_selector(".ace_gutter-cell.ace_error", timeout=10_000)
    page.wait_for_selector("#problem-list .item.error")
    assert "expected" in page.inner_text("#problem-list")
    shot(page, "02-editor-syntax-error")

    # A typo of an API name is a lint warning.
    page.evaluate("src => oktoEditor.setValue(src, 1)", "local d = get_devce('x')\nreturn d\n")
    page.wait_for_selector("#problem-list .item.warning")
    assert "did you mean" in page.inner_text("#problem-list")

    # Completion offers the API with its docs; signature help follows the arguments.
    page.evaluate("oktoEditor.setValue('', 1)")
    page.click("#editor")
    page.keyboard.type("get_dev")
    page.wait_for_selector(".ace_autocomplete .ace_line:has-text('get_device')")
    page.keyboard.press("Escape")
    page.evaluate("oktoEditor.setValue('', 1)")
    page.keyboard.type('send_cwmp_message("SN1", ')
    page.wait_for_selector("#signature-help:visible")
    help_text = page.inner_text("#signature-help")
    assert "send_cwmp_message(" in help_text and "xml_payload" in help_text
    shot(page, "02b-editor-signature-help")
    page.keyboard.press("Escape")

    # Fixed, saved with Ctrl-S, run: live output and the result table.
    page.evaluate("src => oktoEditor.setValue(src, 1)", FIXED)
    page.wait_for_selector("#problem-list .item.muted:has-text('No problems')")
    page.fill("#save-message", "first working version")
    page.click("#editor")
    page.keyboard.press("Control+s")
    page.wait_for_selector("#save-state:has-text('saved')")
    assert "v2" in page.inner_text("#version-label")
    page.click("#run-btn")
    page.wait_for_selector("#console .line:has-text('checking device 3')", timeout=30_000)
    page.wait_for_selector("#result table.value", timeout=30_000)
    assert page.inner_text("#run-status") == "succeeded"
    grid = page.inner_text("#result table.value")
    assert "SN-2" in grid and "uptime" in grid
    page.click("#result .result-head [data-action=raw]")
    assert '"serial": "SN-1"' in page.inner_text("#result pre.json")
    page.click("#result .result-head [data-action=raw]")
    shot(page, "03-editor-after-run")

    # A runtime error shows its line; a click jumps there.
    page.evaluate(
        "src => oktoEditor.setValue(src, 1)", "print('before')\nlocal t = nil\nreturn t.field\n"
    )
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#console .line.failure a", timeout=30_000)
    page.click("#console .line.failure a")
    assert page.evaluate("oktoEditor.getCursorPosition().row") == 2
    shot(page, "04-editor-runtime-error")

    # A long run is cancelled from the console.
    page.evaluate("src => oktoEditor.setValue(src, 1)", "print('waiting')\nsleep(30)\nreturn 1\n")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#console .line:has-text('waiting')", timeout=30_000)
    page.wait_for_selector("#cancel-btn:enabled")
    page.click("#cancel-btn")
    page.wait_for_selector("#run-status:has-text('cancelled')", timeout=15_000)

    # History: the runs page lists the runs; the run page shows output, result and code.
    page.goto(base + "/runs/?script=inventory")
    page.wait_for_selector("table.grid tbody tr")
    assert page.locator("table.grid tbody tr").count() == 3
    shot(page, "05-runs")
    page.click("table.grid tbody tr:has-text('Succeeded') td:first-child a")
    page.wait_for_selector("#result table.value", timeout=15_000)
    assert "checking device 1" in page.inner_text("#console")
    assert "rows[#rows + 1]" in page.inner_text("#code")
    shot(page, "06-run-page")

    # Versions: history, diff of two versions, restore.
    page.goto(editor_url + "versions/")
    shot(page, "07-versions")
    page.click("#compare")
    page.wait_for_selector("table.diff")
    assert page.locator("table.diff td.add").count() > 0
    shot(page, "08-diff")
    # Runs of unsaved edits made no version: v1 (the template) and v2 (saved) only.
    page.goto(editor_url + "versions/1/")
    page.click("text=Restore this version")
    page.wait_for_selector("#editor .ace_content")
    assert "Restored version 1 as version 3" in page.inner_text(".messages")
    assert "get_all_devices" in page.evaluate("oktoEditor.getValue()")
    page.goto(base + "/reference/")
    shot(page, "09-reference")
    page.goto(base + "/audit/")
    assert "run.start" in page.inner_text("table.grid")
    shot(page, "10-audit")
    page.goto(base + "/devices/")
    shot(page, "11-devices")
    page.goto(base + "/scripts/")
    assert "inventory" in page.inner_text("table.grid")
    shot(page, "00-scripts")
    page.close()


def _api_status(page, method: str, url: str, body: dict) -> int:
    return page.evaluate(
        """async ([method, url, body]) => (await fetch(url, {method, credentials: 'same-origin',
             headers: {'Content-Type': 'application/json', 'X-CSRFToken': Okto.csrf()},
             body: JSON.stringify(body)})).status""",
        [method, url, body],
    )


def test_viewer_cannot_run_or_edit_and_operator_cannot_edit(platform, browser):
    base = platform
    admin = _login(browser, base, "admin1")
    admin.fill("input[name=name]", "roles-demo")
    admin.click("#new-script button[type=submit]")
    admin.wait_for_selector("#editor .ace_content")
    script_id = int(admin.url.rstrip("/").rsplit("/", 1)[1])
    admin.close()

    viewer = _login(browser, base, "viewer1")
    viewer.goto(f"{base}/scripts/{script_id}/")
    viewer.wait_for_selector("#editor .ace_content")
    assert viewer.locator("#run-btn").count() == 0 and viewer.locator("#save-btn").count() == 0
    assert viewer.evaluate("oktoEditor.getReadOnly()") is True
    assert _api_status(viewer, "POST", "/api/runs", {"script_id": script_id}) == 403
    assert (
        _api_status(viewer, "POST", f"/api/scripts/{script_id}/versions", {"content": "x"}) == 403
    )
    shot(viewer, "12-editor-viewer")
    viewer.close()

    operator = _login(browser, base, "operator1")
    operator.goto(f"{base}/scripts/{script_id}/")
    operator.wait_for_selector("#editor .ace_content")
    assert operator.locator("#save-btn").count() == 0 and operator.locator("#run-btn").count() == 1
    assert operator.evaluate("oktoEditor.getReadOnly()") is True
    assert (
        _api_status(operator, "POST", f"/api/scripts/{script_id}/versions", {"content": "x"}) == 403
    )
    operator.close()


# Makes the page's first run-console socket fail before it opens, as a
# connection lost on the way does: it is pointed at a path the server has no
# route for. Every later socket goes where the page asked.
FIRST_CONSOLE_SOCKET_FAILS = """
(() => {
  const Real = window.WebSocket;
  let failed = false;
  function Failing(url, protocols) {
    if (!failed && String(url).includes("/ws/runs/")) {
      failed = true;
      url = String(url).replace("/ws/runs/", "/ws/no-such-route/");
    }
    return new Real(url, protocols);
  }
  Failing.prototype = Real.prototype;
  Object.assign(Failing, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = Failing;
})();
"""


def test_a_console_whose_first_socket_fails_connects_again(platform, browser):
    """A console socket that closed before it ever opened was taken for a
    refusal and never tried again: the run's output never showed."""
    page = _login(browser, platform, "admin1")
    page.add_init_script(FIRST_CONSOLE_SOCKET_FAILS)
    page.fill("input[name=name]", "reconnects")
    page.fill("#new-script input[name=folder]", "ops")
    page.click("#new-script button[type=submit]")
    page.wait_for_selector("#editor .ace_content")
    page.evaluate("src => oktoEditor.setValue(src, 1)", "print('after a lost socket')\nreturn 7\n")
    page.click("#editor")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#console .line:has-text('after a lost socket')", timeout=30_000)
    page.wait_for_selector("#run-status:has-text('succeeded')", timeout=30_000)
    assert "refused" not in page.inner_text("#console")
    assert page.evaluate("window.WebSocket.name") == "Failing"  # the page had the failing socket
    page.close()
