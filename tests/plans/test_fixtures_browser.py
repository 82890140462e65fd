"""The editor's Fixtures panel in a real browser: "Run all" replays each test
fixture's recording on a real worker, and the panel shows which passed and, for
the one that failed, the first difference. Real web process, worker, NATS."""

from __future__ import annotations

import os

import pytest

from tests.browser_site import BROWSER_TEST, SHOTS, login, running_site

pytestmark = BROWSER_TEST
PASSWORD = "fixture-browser-pass-41"
SCRIPT = r"""local name = "Device.DeviceInfo.ModelName"
local r = send_cwmp_message(args.serial, "<cwmp:GetParameterValues><ParameterNames><string>"
  .. name .. "</string></ParameterNames></cwmp:GetParameterValues>", 0)
print("model " .. r[name])
return r[name]
"""
# What the worker recorded when v1 ran against a CPE whose model is HGW-1.
SETUP = f"""
from django.contrib.auth.models import User, Group
from oktoscripts.cwmp.soap import request_from_payload
from oktoscripts.runs.models import Run
from oktoscripts.scripts import editing, fixtures
u = User.objects.create_user('operator1', password='{PASSWORD}')
u.groups.add(Group.objects.get(name='Operator'))
a = User.objects.create_user('author1', password='{PASSWORD}')
a.groups.add(Group.objects.get(name='Author'))
s = editing.create_script(a, 'model-check', {SCRIPT!r})
xml = ('<cwmp:GetParameterValues><ParameterNames><string>Device.DeviceInfo.ModelName'
       '</string></ParameterNames></cwmp:GetParameterValues>')
call = {{'protocol': 'cwmp', 'target': 'FX-1', 'line': 2, 'at': 1.0, 'latency_s': 0.01,
        'request': request_from_payload(xml, 0).to_json(),
        'answer': {{'ok': True, 'result': {{'Device.DeviceInfo.ModelName': 'HGW-1'}}}}}}
run = Run.objects.create(script_name='model-check', code=s.latest.content,
    script_version=s.latest, status='succeeded', started_by='user', user=u,
    args={{'serial': 'FX-1'}}, result='HGW-1',
    metrics={{'recording': {{'calls': [call], 'truncated': False}}}})
run.output.create(seq=1, stream='stdout', text='model HGW-1', time=run.created)
fixtures.save_from_run(run, 'reads the model', a)
fixtures.save_from_run(run, 'expects the next model', a, expected_result='HGW-2')
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory, nats_url, mongo_uri):
    data = tmp_path_factory.mktemp("fixtures-browser")
    with running_site(data, nats_url, mongo_uri, SETUP, {"worker": ["worker"]}) as base:
        yield base


def test_run_all_fixtures_from_the_editor_shows_pass_and_the_first_difference(site, browser):
    page = login(browser, site, "operator1", PASSWORD)
    page.click("text=model-check")
    page.wait_for_selector("#editor .ace_content")
    page.click("#fixtures-tab")
    page.wait_for_selector("#pane-fixtures.active .fixture[data-name='reads the model']")
    assert page.locator("#pane-fixtures .fixture").count() == 2
    assert "not run" in page.inner_text("#pane-fixtures")
    page.click("#fixtures-run-all")
    page.wait_for_selector("#fixtures-summary:has-text('1 of 2 passed')", timeout=60_000)
    good = page.locator(".fixture[data-name='reads the model']")
    bad = page.locator(".fixture[data-name='expects the next model']")
    assert good.locator(".fixture-verdict").inner_text() == "passed"
    assert bad.locator(".fixture-verdict").inner_text() == "failed"
    assert bad.locator(".fixture-difference").inner_text() == (
        'result: expected "HGW-2", got "HGW-1"'
    )
    # Operators run fixtures; saving and deleting them is for Authors and Admins.
    assert page.locator("#pane-fixtures button.danger").count() == 0
    page.screenshot(path=str(SHOTS / f"fixtures-{os.getpid()}.png"))
    page.click(".fixture[data-name='expects the next model'] a")
    page.wait_for_selector("#run-status.succeeded", timeout=30_000)
    assert "A check of the test fixture expects the next model" in page.inner_text("#replay")
    verdict = page.inner_text("#fixture-verdict")
    assert "fixture failed" in verdict and 'result: expected "HGW-2", got "HGW-1"' in verdict
