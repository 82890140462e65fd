"""A working day in the IDE (issue 15), in Debian's chromium against a real web
process, worker, NATS and MongoDB: what the browser shows when runs fail,
are cancelled or refused, when a check lands late, and when unsaved text runs.
"""

from __future__ import annotations

import uuid

import pytest

from tests.browser_site import BROWSER_TEST, CHROMIUM, running_site

PASSWORD = "workday-pass-4471"

pytestmark = BROWSER_TEST


@pytest.fixture(scope="module")
def platform(tmp_path_factory, nats_url, mongo_uri):
    setup = (
        "from django.contrib.auth.models import User, Group\n"
        f"for name in ('Admin', 'Viewer'):\n"
        f"    u = User.objects.create_user(name.lower() + '1', password='{PASSWORD}')\n"
        "    u.groups.add(Group.objects.get(name=name))\n"
        f"User.objects.create_user('nobody1', password='{PASSWORD}')\n")
    data = tmp_path_factory.mktemp("workday-var")
    with running_site(data, nats_url, mongo_uri, setup, {"worker": ["worker"]}) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[dev]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def _login(browser, base: str, username: str, landing: str = "/scripts/"):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + landing)
    return page


def _new_script(page, name: str) -> None:
    page.fill("input[name=name]", name)
    page.click("#new-script button[type=submit]")
    page.wait_for_selector("#editor .ace_content")
    page.wait_for_selector("#problem-list .item")


def _run(page, source: str) -> None:
    page.evaluate("src => oktoEditor.setValue(src, 1)", source)
    page.click("#run-btn")


def _wait_end(page) -> str:
    page.wait_for_selector("#run-status.succeeded, #run-status.failed, #run-status.cancelled,"
                           " #run-status.limit_exceeded", timeout=30_000)
    return page.inner_text("#console")


@pytest.fixture(scope="module")
def editor(platform, browser):
    page = _login(browser, platform, "admin1")
    _new_script(page, "workday")
    yield page
    page.close()


def test_a_run_that_fails_before_printing_shows_only_its_error(editor):
    _run(editor, 'error("boom")\n')
    text = _wait_end(editor)
    assert "boom" in text and "Waiting for output" not in text


def test_a_cancelled_run_says_so_once(editor):
    _run(editor, 'print("start")\nsleep(30)\n')
    editor.wait_for_selector("#console .line:has-text('start')")
    editor.click("#cancel-btn")
    text = _wait_end(editor)
    assert "Cancelled" in text and "cancelled: cancelled" not in text.lower()
    assert "Error" not in text


def test_unsaved_edits_run_as_a_draft_and_make_no_version(editor, platform):
    label = editor.inner_text("#version-label")
    _run(editor, 'print("draft text")\nreturn 7\n')
    text = _wait_end(editor)
    assert "draft text" in text
    assert editor.inner_text("#version-label") == label  # nothing saved
    assert "unsaved" in editor.inner_text("#save-state")
    history = editor.context.request.get(platform + "/api/scripts?q=workday").json()
    script_id = history["scripts"][0]["id"]
    versions = editor.context.request.get(f"{platform}/api/scripts/{script_id}/versions").json()
    assert [v["number"] for v in versions["versions"]] == [1]
    run_id = editor.get_attribute("#run-link", "href").rstrip("/").rsplit("/", 1)[-1]
    run = editor.context.request.get(f"{platform}/api/runs/{run_id}").json()
    assert run["version"] is None and run["trigger"] == "draft"


def test_a_refused_console_is_reported_at_once(platform, browser, editor):
    # No such run: the page says so without retrying.
    editor.evaluate("""id => {
      const box = document.createElement('div'); box.id = 'probe'; document.body.appendChild(box);
      new Okto.RunConsole(id, {output: box});
    }""", str(uuid.uuid4()))
    editor.wait_for_selector("#probe:has-text('No such run')", timeout=2_000)
    # A signed-in user without a role: the socket closes with "not allowed" (4403).
    page = browser.new_page()
    page.goto(platform + "/login/")
    page.fill("#id_username", "nobody1")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    code = page.evaluate("""id => new Promise(done => {
      const ws = new WebSocket('ws://' + location.host + '/ws/runs/' + id + '/');
      ws.onclose = ev => done(ev.code);
    })""", str(uuid.uuid4()))
    assert code == 4403
    page.close()


def test_a_late_syntax_check_keeps_the_run_error_mark(editor):
    # Checks answer 1.5 s late: the one typing starts lands after the run failed.
    editor.evaluate("""() => {
      const f = window.fetch; window.checksLanded = 0;
      window.fetch = (u, o) => String(u).includes('/api/check')
        ? new Promise(r => setTimeout(r, 1500)).then(() => f(u, o))
            .then(res => { setTimeout(() => { window.checksLanded += 1; }, 50); return res; })
        : f(u, o);
    }""")
    _run(editor, "local t = nil\nprint(t.field)\n")
    _wait_end(editor)
    editor.wait_for_function("() => window.checksLanded >= 1", timeout=10_000)
    marks = editor.evaluate(
        "oktoEditor.session.getAnnotations().filter(a => a.text.startsWith('run failed'))"
        ".map(a => a.row)")
    assert marks == [1]
