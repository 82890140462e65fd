"""A working day in the IDE (issue 15), in Debian's chromium against a real web
process, worker, NATS and MongoDB: what the browser shows when runs fail,
are cancelled or refused, when a check lands late, and when unsaved text runs.
"""

from __future__ import annotations

import uuid

import pytest

from tests.browser_site import BROWSER_TEST, login, running_site

PASSWORD = "workday-pass-4471"

pytestmark = BROWSER_TEST


BIG = 100_000
BIG_RUN_ID = "0b1ee000-0000-4000-8000-000000100000"
# A finished run of 100,000 stored lines (kinds mixed: print, log, device calls).
BIG_RUN = f"""
from datetime import timedelta
from django.utils import timezone
from oktoscripts.runs.models import Run, RunOutputLine
now = timezone.now()
run = Run.objects.create(id="{BIG_RUN_ID}", script_name="big", code="-- big", started_by="user",
                         status="succeeded", started=now, finished=now, result={{"rows": 1}})
def line(seq):
    if seq % 1000 == 0:
        return RunOutputLine(run=run, seq=seq, stream="log", level="warn", text=f"warning {{seq}}",
                             time=now + timedelta(milliseconds=seq))
    if seq % 1000 == 500:
        return RunOutputLine(run=run, seq=seq, stream="call",
                             text=f"get_device SN{{seq}}: 1.5 ms, ok",
                             time=now + timedelta(milliseconds=seq))
    return RunOutputLine(run=run, seq=seq, text=f"row {{seq}} " + "x" * 40,
                         time=now + timedelta(milliseconds=seq))
for start in range(1, {BIG} + 1, 10000):
    RunOutputLine.objects.bulk_create([line(s) for s in range(start, start + 10000)])
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory, nats_url, mongo_uri):
    setup = (
        "from django.contrib.auth.models import User, Group\n"
        f"for name in ('Admin', 'Viewer'):\n"
        f"    u = User.objects.create_user(name.lower() + '1', password='{PASSWORD}')\n"
        "    u.groups.add(Group.objects.get(name=name))\n"
        f"User.objects.create_user('nobody1', password='{PASSWORD}')\n" + BIG_RUN
    )
    data = tmp_path_factory.mktemp("workday-var")
    with running_site(data, nats_url, mongo_uri, setup, {"worker": ["worker"]}) as base:
        yield base


def _login(browser, base: str, username: str):
    return login(browser, base, username, PASSWORD)  # script errors in page.errors: fail on any


def _new_script(page, name: str) -> None:
    page.fill("input[name=name]", name)
    page.click("#new-script button[type=submit]")
    page.wait_for_selector("#editor .ace_content")
    page.wait_for_selector("#problem-list .item")


def _run(page, source: str) -> None:
    page.evaluate("src => oktoEditor.setValue(src, 1)", source)
    page.click("#run-btn")


def _wait_end(page) -> str:
    try:
        page.wait_for_function("() => !document.getElementById('run-btn').disabled", timeout=90_000)
    finally:
        assert not page.errors
    page.wait_for_selector(
        "#run-status.succeeded, #run-status.failed, #run-status.cancelled,"
        " #run-status.limit_exceeded",
        timeout=30_000,
    )
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
    assert versions["versions"] == []  # not even the template: only Save makes a version
    run_id = editor.get_attribute("#run-link", "href").rstrip("/").rsplit("/", 1)[-1]
    run = editor.context.request.get(f"{platform}/api/runs/{run_id}").json()
    assert run["version"] is None and run["trigger"] == "draft"


def test_a_refused_console_is_reported_at_once(platform, browser, editor):
    # No such run: the page says so without retrying.
    editor.evaluate(
        """id => {
      const box = document.createElement('div'); box.id = 'probe'; document.body.appendChild(box);
      new Okto.RunConsole(id, {output: box});
    }""",
        str(uuid.uuid4()),
    )
    editor.wait_for_selector("#probe:has-text('No such run')", timeout=2_000)
    # A signed-in user without a role: the socket closes with "not allowed" (4403).
    page = browser.new_page()
    page.goto(platform + "/login/")
    page.fill("#id_username", "nobody1")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    code = page.evaluate(
        """id => new Promise(done => {
      const ws = new WebSocket('ws://' + location.host + '/ws/runs/' + id + '/');
      ws.onclose = ev => done(ev.code);
    })""",
        str(uuid.uuid4()),
    )
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
        ".map(a => a.row)"
    )
    assert marks == [1]


def _console_rows(page) -> list[str]:
    return page.eval_on_selector_all(
        "#console .vlist .line .x", "els => els.map(e => e.textContent)"
    )


def test_a_stored_run_of_100000_lines_opens_at_once_and_pages_the_rest(platform, browser):
    page = _login(browser, platform, "viewer1")
    page.goto(f"{platform}/runs/{BIG_RUN_ID}/")
    page.wait_for_selector("#console .line:has-text('warning 100000')", timeout=5_000)
    # Only the rows in view are in the page.
    assert len(_console_rows(page)) < 200
    # Scrolled to the top, the first lines are fetched from the server.
    page.hover("#console")
    page.mouse.wheel(0, -10_000_000)  # the reader scrolls to the top
    page.wait_for_selector("#console .line:has-text('row 1 x')", timeout=5_000)
    assert len(_console_rows(page)) < 200
    # Search looks at every line, also those never shown.
    page.fill(".console-tools .search", "row 4242 ")
    page.wait_for_selector(".console-tools .count:has-text('1 of 1')", timeout=15_000)
    page.wait_for_selector("#console .line.current mark:has-text('row 4242 ')")
    page.fill(".console-tools .search", "")
    # The kind filter: print lines hidden, logs and device calls left.
    page.uncheck(".console-tools input[data-stream=stdout]")
    page.hover("#console")
    page.mouse.wheel(0, -10_000_000)  # the reader scrolls to the top
    page.wait_for_selector("#console .vlist .line.log:has-text('warning 1000')")
    kinds = page.eval_on_selector_all("#console .vlist .line", "els => els.map(e => e.className)")
    assert kinds and not [k for k in kinds if "stdout" in k]
    assert any("call" in k for k in kinds)
    # Timestamps since the start.
    page.click(".console-tools [data-action=time]")
    page.wait_for_function(
        "() => document.querySelector('#console .vlist .line .t').textContent.trim()[0] === '+'"
    )
    # Download: every line as text.
    href = page.get_attribute(".console-tools [data-action=download]", "href")
    text = page.context.request.get(platform + href).text()
    assert text.count("\n") == BIG and "row 99999 x" in text
    page.close()


def test_streaming_follows_the_end_only_while_at_the_end(editor):
    _run(editor, 'for i = 1, 20000 do print("line " .. i) end\nreturn 1\n')
    editor.wait_for_selector("#console .line:has-text('line 20000')", timeout=90_000)
    _wait_end(editor)
    editor.wait_for_function(
        "() => { const b = document.getElementById('console');"
        " return b.scrollTop + b.clientHeight >= b.scrollHeight - 20; }",
        timeout=2_000,
    )
    assert len(_console_rows(editor)) < 200
    # Scrolled up during a run: new lines do not pull the view down.
    _run(
        editor,
        'print("first")\nfor i = 1, 100 do print("fill " .. i) end\n'
        'for i = 1, 50 do print("more " .. i) sleep(0.02) end\n',
    )
    editor.wait_for_selector("#console .line:has-text('more 3')", timeout=30_000)
    editor.hover("#console")
    editor.mouse.wheel(0, -100_000)  # the reader scrolls up
    away = (
        "() => { const b = document.getElementById('console');"
        " return b.scrollTop + b.clientHeight < b.scrollHeight - 200; }"
    )
    editor.wait_for_function(away, timeout=10_000)
    _wait_end(editor)
    assert editor.evaluate(away)  # new lines did not pull the view down
    editor.wait_for_selector(".console-tools .jump:visible")
    editor.click(".console-tools .jump")
    editor.wait_for_selector("#console .line:has-text('more 50')")


def test_wrap_copy_and_clear(editor):
    editor.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _run(editor, 'print(string.rep("long ", 80))\nprint("short")\n')
    _wait_end(editor)
    height = "el => el.getBoundingClientRect().height"
    row = "#console .vlist .line:has-text('long long')"
    assert editor.eval_on_selector(row, height) < 25
    editor.click(".console-tools [data-action=wrap]")
    editor.wait_for_function(
        "() => document.querySelector('#console .vlist .line').getBoundingClientRect().height > 40"
    )
    # The row below moved down to make room.
    tops = editor.eval_on_selector_all("#console .vlist .line", "els => els.map(e => e.offsetTop)")
    assert tops[1] >= 40
    editor.click(".console-tools [data-action=copy]")
    copied = editor.evaluate("navigator.clipboard.readText()")
    assert "short" in copied and "long long" in copied
    editor.click(".console-tools [data-action=clear]")
    editor.wait_for_function("() => !document.querySelector('#console .vlist .line')")


RESULT_ROWS = """return {
  {uptime = 5, name = "b", serial = "SN-2"},
  {name = "a", uptime = 12, serial = "SN-1", extra = {port = 8080}},
  {uptime = 7, serial = "SN-3", name = "c, with a comma"},
}
"""


def test_results_grid_sorts_filters_exports_and_opens_nested_tables(editor):
    _run(editor, RESULT_ROWS)
    _wait_end(editor)
    heads = editor.eval_on_selector_all(
        "#result table.value th", "els => els.map(e => e.textContent)"
    )
    assert heads[:2] == ["#", "serial"] and set(heads[2:]) == {"uptime", "name", "extra"}

    def serials() -> list[str]:
        return editor.eval_on_selector_all(
            "#result table.value tbody tr",
            f"rows => rows.map(r => r.children[{heads.index('serial')}].textContent)",
        )

    editor.click("#result th:text-is('uptime')")
    assert serials() == ["SN-2", "SN-3", "SN-1"]
    editor.click("#result th:text-is('uptime')")
    assert serials() == ["SN-1", "SN-3", "SN-2"]
    editor.fill("#result .grid-tools .filter", "comma")
    assert serials() == ["SN-3"]
    assert "1 of 3 rows" in editor.inner_text("#result .grid-tools .count")
    editor.fill("#result .grid-tools .filter", "")
    # A nested table opens in place.
    editor.click("#result details.nested summary")
    editor.wait_for_selector("#result details.nested[open] td:has-text('8080')")
    with editor.expect_download() as download:
        editor.click("#result [data-action=csv]")
    csv = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert csv[0].startswith("serial,") and len(csv) == 4
    assert any('"c, with a comma"' in line for line in csv)
    with editor.expect_download() as download:
        editor.click("#result [data-action=json]")
    assert '"SN-1"' in open(download.value.path(), encoding="utf-8").read()


def test_completion_offers_data_model_paths_with_type_and_access(editor):
    editor.evaluate("oktoEditor.setValue('', 1)")
    editor.click("#editor")
    editor.keyboard.type('send_cwmp_message("SN1", "')
    editor.keyboard.type("Device.WiFi.")
    editor.wait_for_selector(
        ".ace_autocomplete .ace_line:has-text('Device.WiFi.AccessPoint.')", timeout=10_000
    )
    editor.keyboard.type("SS")
    item = ".ace_autocomplete .ace_line:has-text('Device.WiFi.SSID.')"
    editor.wait_for_selector(item, timeout=10_000)
    assert "table" in editor.inner_text(item)
    editor.keyboard.type("ID.1.SSI")
    item = ".ace_autocomplete .ace_line:has-text('Device.WiFi.SSID.1.SSID')"
    editor.wait_for_selector(item, timeout=10_000)
    assert "string · writable" in editor.inner_text(item)
    editor.keyboard.press("Enter")
    assert 'send_cwmp_message("SN1", "Device.WiFi.SSID.1.SSID' in editor.evaluate(
        "oktoEditor.getValue()"
    )
    editor.keyboard.press("Escape")


def test_hover_shows_api_and_path_docs(editor):
    editor.evaluate(
        "src => oktoEditor.setValue(src, -1)",
        'local d = get_device("SN1")\nprint("Device.WiFi.SSID.1.SSID")\n',
    )
    word = editor.evaluate("""() => {
      const r = oktoEditor.renderer;
      r.updateFull(true);
      const at = (row, col) => r.textToScreenCoordinates(row, col);
      return [at(0, 13), at(1, 15)];
    }""")
    editor.mouse.move(word[0]["pageX"] + 2, word[0]["pageY"] + 6)
    editor.wait_for_selector("#hover-doc:visible:has-text('get_device(')", timeout=5_000)
    editor.mouse.move(word[1]["pageX"] + 2, word[1]["pageY"] + 6)
    editor.wait_for_selector(
        "#hover-doc:visible:has-text('read-only'), #hover-doc:visible:has-text('writable')",
        timeout=5_000,
    )
    assert "Device.WiFi.SSID.1.SSID" in editor.inner_text("#hover-doc")


def test_completion_offers_the_fields_of_returned_tables(editor):
    editor.evaluate(
        "src => oktoEditor.setValue(src, 1)",
        "for _, dev in ipairs(get_all_devices()) do\n  print(dev.sn)\nend\n"
        'local d = get_device("SN1")\n',
    )
    editor.click("#editor")
    editor.keyboard.press("Control+End")
    editor.keyboard.type("print(d.ven")
    editor.wait_for_selector(".ace_autocomplete .ace_line:has-text('d.vendor')", timeout=10_000)
    editor.keyboard.press("Enter")
    assert editor.evaluate("oktoEditor.getValue()").rstrip().endswith("print(d.vendor)")


def test_snippet_gallery_inserts_a_task(editor):
    editor.evaluate("oktoEditor.setValue('', 1)")
    editor.click("#snippets summary")
    editor.click("#snippet-menu button:has-text('Set the Wi-Fi SSID')")
    assert "Device.WiFi.SSID.1.SSID" in editor.evaluate("oktoEditor.getValue()")
    assert not editor.evaluate("document.getElementById('snippets').open")


def _no_page_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_narrow_screens_keep_the_editor_and_run_in_reach(platform, browser):
    page = _login(browser, platform, "admin1")
    page.set_viewport_size({"width": 1024, "height": 768})
    _new_script(page, "narrow")
    assert _no_page_overflow(page)
    assert page.evaluate(
        "document.querySelector('.topbar').scrollWidth "
        "<= document.querySelector('.topbar').clientWidth + 1"
    )
    assert page.eval_on_selector("#editor", "e => e.getBoundingClientRect().width") >= 600
    page.set_viewport_size({"width": 390, "height": 844})
    box = page.eval_on_selector("#editor", "e => e.getBoundingClientRect().toJSON()")
    assert box["width"] >= 360
    run = page.eval_on_selector("#run-btn", "e => e.getBoundingClientRect().toJSON()")
    assert 0 <= run["left"] and run["right"] <= 390
    assert _no_page_overflow(page)
    for path in ("/runs/", "/devices/", f"/runs/{BIG_RUN_ID}/"):
        page.goto(platform + path)
        assert _no_page_overflow(page), path
    page.close()


def test_dark_mode_follows_the_system_and_the_toggle(platform, browser):
    context = browser.new_context(color_scheme="dark", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(platform + "/login/")
    page.fill("#id_username", "admin1")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(platform + "/scripts/")
    background = "() => getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(background) == "rgb(15, 20, 29)"
    _new_script(page, "dark")
    page.wait_for_selector("#editor.ace-one-dark")
    page.click("#theme-toggle")  # light, and kept
    page.wait_for_selector("#editor.ace-chrome")
    page.reload()
    page.wait_for_selector("#editor .ace_content")
    assert page.evaluate(background) == "rgb(244, 245, 247)"
    context.close()


NAME, TYPE, VALUE = (
    "input[aria-label='argument name']",
    "select[aria-label='argument type']",
    "input[aria-label='argument value']",
)


def test_typed_arguments_reach_the_script_and_are_kept(editor, platform):
    editor.goto(editor.url)  # a fresh page: no arguments kept yet for this script
    editor.wait_for_selector("#editor .ace_content")
    for name, kind, value in (
        ("count", "number", "3"),
        ("dry", "boolean", "true"),
        ("opts", "json", '{"ports": [80, 443]}'),
        ("label", "string", "x"),
    ):
        editor.click("#add-arg")
        row = editor.locator("#arg-rows .arg").last
        row.locator(NAME).fill(name)
        row.locator(TYPE).select_option(kind)
        row.locator(VALUE).fill(value)
    _run(
        editor,
        "return {count = args.count + 1, dry = args.dry, port = args.opts.ports[2],"
        " label = args.label}\n",
    )
    _wait_end(editor)
    assert '"count": 4' in editor.inner_text("#result pre.json")
    assert '"dry": true' in editor.inner_text("#result pre.json")
    assert '"port": 443' in editor.inner_text("#result pre.json")
    # Kept for the next visit, per user and script, on the server (not in this browser).
    editor.evaluate("() => localStorage.clear()")
    editor.goto(editor.url)
    editor.wait_for_selector("#editor .ace_content")
    assert editor.locator("#arg-rows .arg").count() == 4
    assert editor.locator(f"#arg-rows {TYPE}").first.input_value() == "number"
    # A wrong value says which argument, and nothing runs.
    editor.locator(f"#arg-rows {VALUE}").first.fill("three")
    editor.click("#run-btn")
    assert "count must be a number" in editor.inner_text("#run-status")


def test_declared_arguments_defaults_and_presets(platform, browser):
    page = _login(browser, platform, "admin1")
    _new_script(page, "presets")
    page.evaluate("src => oktoEditor.setValue(src, 1)", "return args.ssid\n")
    # Declare an argument with a default and a description; Save keeps them with the version.
    page.click("#add-arg")
    row = page.locator("#arg-rows .arg").last
    row.locator(NAME).fill("ssid")
    row.locator("input[aria-label='argument default']").fill("home")
    row.locator("input[aria-label='argument description']").fill("the Wi-Fi name to set")
    assert "unsaved" in page.inner_text("#save-state")
    page.click("#save-btn")
    page.wait_for_selector("#save-state:has-text('saved')")
    editor_url = page.url
    page.goto(editor_url)
    row = page.locator("#arg-rows .arg").first
    assert row.locator(VALUE).input_value() == "home"  # the default: never run yet
    assert row.locator("input[aria-label='argument description']").input_value() == (
        "the Wi-Fi name to set"
    )
    # A preset of values, saved with the script.
    row.locator(VALUE).fill("lab-net")
    page.once("dialog", lambda d: d.accept("lab"))
    page.click("#save-preset")
    page.wait_for_selector("#arg-presets option[value='lab']", state="attached")
    page.goto(editor_url)
    assert page.locator("#arg-rows .arg").first.locator(VALUE).input_value() == "home"
    page.select_option("#arg-presets select", "lab")
    assert page.locator("#arg-rows .arg").first.locator(VALUE).input_value() == "lab-net"
    page.click("#run-btn")
    _wait_end(page)
    assert page.inner_text("#result").endswith("lab-net")
    # A Viewer reads the declaration, cannot change it or save presets.
    viewer = _login(browser, platform, "viewer1")
    viewer.goto(editor_url)
    viewer.wait_for_selector("#arg-rows .arg")
    assert "the Wi-Fi name to set" in viewer.inner_text("#arg-rows")
    assert viewer.locator("#add-arg, #save-preset").count() == 0
    assert viewer.locator(f"#arg-rows {NAME}").first.get_attribute("readonly") is not None
    viewer.close()
    page.close()


def test_a_new_script_opens_with_the_template_unsaved_and_save_makes_v1(platform, browser):
    page = _login(browser, platform, "admin1")
    _new_script(page, "fresh")
    assert "-- fresh" in page.evaluate("() => oktoEditor.getValue()")
    assert "unsaved" in page.inner_text("#save-state")
    assert page.inner_text("#version-label") == "not saved yet"
    script_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    versions = f"{platform}/api/scripts/{script_id}/versions"
    assert page.context.request.get(versions).json()["versions"] == []
    page.click("#save-btn")
    page.wait_for_selector("#save-state:has-text('saved')")
    saved = page.context.request.get(versions).json()["versions"]
    assert [v["number"] for v in saved] == [1]
    content = page.context.request.get(f"{versions}/1").json()["content"]
    assert content.startswith("-- fresh") and "get_all_devices" in content
    page.close()


POPUP = ".ace_autocomplete .ace_line"


def _lines(page) -> list[str]:
    """The captions the completion list offers."""
    page.wait_for_selector(POPUP, timeout=10_000)
    return page.evaluate(
        "() => oktoEditor.completer.completions.filtered.map(c => c.caption || c.value)"
    )


def test_usp_payloads_complete_message_fields_shapes_commands_and_params(editor):
    # A Lua table payload: the request types a script may send, as shapes.
    editor.evaluate("oktoEditor.setValue('', 1)")
    editor.click("#editor")
    editor.keyboard.type('send_usp_message("os::X", {body = {request = {')
    editor.evaluate("() => oktoEditor.execCommand('startAutocomplete')")
    shown = _lines(editor)
    for kind in ("get", "set", "add", "delete", "operate", "get_instances", "get_supported_dm"):
        assert kind in shown
    assert "notify" not in shown and "register" not in shown  # not a script's to send
    editor.keyboard.type("operat")
    editor.wait_for_selector(f"{POPUP}:has-text('operate')")
    editor.keyboard.press("Enter")
    # The Operate shape is in, the cursor in its command path: commands end in "()".
    editor.wait_for_selector(f"{POPUP}:has-text('Device.Reboot()')", timeout=10_000)
    assert "command · Operate" in editor.inner_text(f"{POPUP}:has-text('Device.Reboot()')")
    editor.keyboard.type("Rebo")
    editor.wait_for_function(
        "() => oktoEditor.completer.completions.filtered[0].caption === 'Device.Reboot()'"
    )
    editor.keyboard.press("Enter")
    value = editor.evaluate("oktoEditor.getValue()")
    assert 'operate = {command = "Device.Reboot()", command_key = "", send_resp = true}' in value
    editor.keyboard.press("Escape")

    # A JSON string payload: a Set's param names are the parameters of its obj_path.
    editor.evaluate(
        "src => oktoEditor.setValue(src, 1)",
        'send_usp_message(sn, \'{"body": {"request": {"set": {"update_objs": '
        '[{"obj_path": "Device.WiFi.SSID.1.", "param_settings": [{"param": "',
    )
    editor.evaluate("() => oktoEditor.execCommand('startAutocomplete')")
    shown = _lines(editor)
    assert "SSID" in shown and "Enable" in shown
    assert not [c for c in shown if c.startswith("Device.")]
    editor.keyboard.press("Escape")
    # Keys inside the JSON: the fields of the message the cursor is in.
    editor.evaluate(
        "src => oktoEditor.setValue(src, 1)",
        'send_usp_message(sn, \'{"body": {"request": {"get": {"',
    )
    editor.evaluate("() => oktoEditor.execCommand('startAutocomplete')")
    shown = _lines(editor)
    assert "param_paths" in shown and "max_depth" in shown
    editor.keyboard.press("Escape")
    # Paths to read are plain data-model paths, without commands.
    line = 'send_usp_message(sn, {body = {request = {get = {param_paths = {"Device."}}}}})'
    editor.evaluate("src => oktoEditor.setValue(src, 1)", line)
    editor.evaluate("col => oktoEditor.moveCursorTo(0, col)", line.index('."') + 1)
    editor.keyboard.type("IP.Diagnostics.")
    editor.wait_for_function(
        "() => ((oktoEditor.completer || {}).completions || {filtered: []}).filtered"
        ".some(c => c.caption === 'Device.IP.Diagnostics.IPPing.')",
        timeout=10_000,
    )
    assert not [c for c in _lines(editor) if "()" in c]
    editor.keyboard.press("Escape")
