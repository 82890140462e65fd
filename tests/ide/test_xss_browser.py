"""Hostile input is harmless: every user-controlled field holds strings that
would run script if a page put them into HTML or a <script> element unescaped,
and a real browser (Playwright driving Debian's chromium) opens every page as
an Admin (who sees the most). The test fails if any script ran, if the
Content-Security-Policy stopped anything (an escaping bug CSP happened to
catch, or our own code the policy breaks), or if a page's own JavaScript
failed on the data.

Screenshots go to /tmp/ide_shots/xss-*.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from tests.browser_site import BROWSER_TEST, login, running_site, shot
from tests.ide.test_ide_browser import PASSWORD

pytestmark = BROWSER_TEST

# Each closes whatever it lands in (a <script> element, a quoted or unquoted
# attribute, text) and tries to run script; a different number says which.
HOSTILE = (
    '</script><script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">'
    '\'><svg onload=window.__xss=3><iframe srcdoc="<script>parent.__xss=4</script>">'
)
# Device credentials may not hold a dot.
HOSTILE_NO_DOT = '"><img src=x onerror="__xss=5"></script><script>__xss=6</script>'


def setup_code(ids_file: Path) -> str:
    """Stores HOSTILE in every field a user (or a device, or a script) controls,
    the way each gets there, and writes the ids of what it made to ``ids_file``."""
    return f"""
import json, uuid
from datetime import timedelta
from django.contrib.auth.models import Group, User
from django.utils import timezone
from oktoscripts.scripts import editing as scripts
from ide.models import ApiToken
from oktoscripts.scripts.models import AuditEvent, Script, ScriptVersion
from oktoscripts.automations.models import (BulkRun, BulkRunItem, Deployment, Schedule,
                                            ScheduleTick, Trigger)
from oktoscripts.devices.client import default_credentials, default_registry
from oktoscripts.runs.models import Run, RunOutputLine

H = {HOSTILE!r}
admin = User.objects.create_user("admin1", password={PASSWORD!r})
admin.groups.add(Group.objects.get(name="Admin"))
evil = User.objects.create_user(H[:150], password="whatever-pass-91")
evil.groups.add(Group.objects.get(name="Author"))

first = "-- " + H + "\\nreturn '" + H.replace("'", "") + "'"
script = scripts.create_script(evil, "hostile", first, folder="ops/" + H, tags=H,
                               description=H, message=H)
scripts.save_version(evil, script, "print([[" + H + "]])\\nreturn 2\\n", message=H)
scripts.update_script(admin, script, limits={{"wall_seconds": 5}})
named = Script.objects.create(name=H[:200], folder=H[:200], description=H, created_by=evil)
named.latest = ScriptVersion.objects.create(script=named, number=1, content=H, author=evil,
                                            message=H)
named.save()

now = timezone.now()
run = Run.objects.create(
    script_name=H[:255], code="print(args.x)\\n" + H, started_by="user", user=evil,
    script_version=script.latest, trigger=H[:255], args={{H: H, "x": H}},
    status="failed", created=now, started=now, finished=now + timedelta(seconds=1),
    result={{H: [H, {{"k": H}}], "list": [{{"a": H}}, {{"a": H}}]}},
    error={{"message": "hostile:2: " + H, "line": 2, "kind": "error", "traceback": [],
           "limit": None}},
    metrics={{"duration_s": 1.0, "binding_calls": {{H: 1}},
             "device_calls": [{{"name": H, "target": H, "latency_s": 0.01, "ok": False}}]}})
for seq, (stream, text) in enumerate([("stdout", H), ("log", H), ("call", H + ": 1.0 ms, ok"),
                                     ("system", H)], 1):
    RunOutputLine.objects.create(run=run, seq=seq, stream=stream, text=text, level="info",
                                 time=now)

from oktoscripts.devices import identifiers
registry = default_registry()
serial = "sn-" + H
# A serial stored before the registry checked serials (it refuses this one now).
identifiers.check_serial = lambda serial: serial
registry.upsert_cwmp(serial, oui=H, product_class=H, manufacturer=H, model=H,
                     software_version=H, data_model="TR-181", ip=H, events=[H, "1 BOOT"],
                     connection_request_url=H, periodic_inform_interval=300)
registry.set_alias(serial, H)
registry.set_params(serial, {{H: H}})
default_credentials().create_or_update({HOSTILE_NO_DOT!r}, "any-password")

bound = dict(script=script, version=script.latest, args={{H: H}}, created_by=evil,
             configured_by=evil)
schedule = Schedule.objects.create(name=H[:200], cron="0 3 * * *", timezone="UTC", **bound)
ScheduleTick.objects.create(schedule=schedule, tick=now, outcome="failed", message=H[:500],
                            claimed_by=H[:80])
bulk = BulkRun.objects.create(name=H[:200], device_filter={{"vendor": H, "text": H}},
                              status="finished", **bound)
BulkRunItem.objects.create(bulk=bulk, serial=serial, status="failed", result={{H: H}},
                           error=H[:1000], run_id=run.pk)
BulkRunItem.objects.create(bulk=bulk, serial=H, status="succeeded", result=H)
Trigger.objects.create(name=H[:200], kind="cwmp_event", event=H[:64],
                       device_filter={{"vendor": H, "product_class": H}}, **bound)
deployment = Deployment.objects.create(
    name=H[:200], desired="stopped", last_end=H[:500], current_run_id=run.pk,
    last_events=[{{"time": H, "event": {{H: H}}}}], **bound)
ApiToken.issue(admin, H[:100])
AuditEvent.objects.create(actor=evil, actor_name=H[:150], action=H[:60], target=H[:300],
                          details={{H: H, "run": str(run.pk)}})
json.dump({{"script": script.pk, "named": named.pk, "run": str(run.pk), "serial": serial,
           "schedule": schedule.pk, "bulk": bulk.pk, "deployment": deployment.pk}},
          open({str(ids_file)!r}, "w"))
"""


@pytest.fixture(autouse=True)
def close_async_db_connections() -> None:
    """Replaces the package's autouse async fixture: this test uses no async ORM, and
    the sync Playwright API keeps an event loop running in this thread."""


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory, nats_url, mongo_uri):
    data = tmp_path_factory.mktemp("hostile-site")
    ids_file = data / "ids.json"
    with running_site(data, nats_url, mongo_uri, setup_code(ids_file), {}) as base:
        yield base, json.loads(ids_file.read_text())


def pages(ids: dict) -> list[str]:
    """Every page, and the query strings pages show back."""
    s, n = ids["script"], ids["named"]
    q = urlencode({"q": HOSTILE})
    return [
        "/scripts/",
        "/scripts/?deleted=1",
        f"/scripts/?{urlencode({'folder': 'ops/' + HOSTILE})}",
        f"/scripts/?{q}&{urlencode({'tag': HOSTILE})}",
        f"/scripts/{s}/",
        f"/scripts/{s}/versions/",
        f"/scripts/{s}/versions/1/",
        f"/scripts/{s}/versions/2/",
        f"/scripts/{s}/diff?a=1&b=2",
        f"/scripts/{n}/",
        f"/scripts/{n}/versions/",
        "/runs/",
        f"/runs/?{urlencode({'script': HOSTILE, 'started_by': HOSTILE})}",
        f"/runs/{ids['run']}/",
        "/devices/",
        f"/devices/?{q}&{urlencode({'vendor': HOSTILE})}",
        f"/devices/{quote(ids['serial'], safe='')}/",
        "/reference/",
        "/automations/",
        f"/automations/schedules/{ids['schedule']}/",
        f"/automations/bulk/{ids['bulk']}/",
        f"/automations/deployments/{ids['deployment']}/",
        "/audit/",
        f"/audit/?{urlencode({'actor': HOSTILE, 'target': HOSTILE})}",
        "/users/",
        "/credentials/",
        "/settings/",
        "/account/tokens/",
        "/api/docs",
    ]


WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sample || ""));
});
"""


def _visit(page, url: str, errors: list[str]) -> dict:
    response = page.goto(url)
    assert response.status == 200, f"{url}: {response.status}"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # the run console's WebSocket, the editor's first check
    return {
        "url": url,
        "xss": page.evaluate("window.__xss"),
        "csp": page.evaluate("window.__csp"),
        "errors": list(errors),
    }


def test_hostile_strings_in_every_field_run_no_script_on_any_page(hostile_site, browser):
    base, ids = hostile_site
    page = login(browser, base, "admin1", PASSWORD)
    page.add_init_script(WATCH)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    bad = []
    for number, path in enumerate(pages(ids)):
        errors.clear()
        seen = _visit(page, base + path, errors)
        if seen["xss"] is not None or seen["csp"] or seen["errors"]:
            bad.append(seen)
        shot(page, f"xss-{number:02d}")
    assert bad == []

    # The pages still show the data, as text.
    page.goto(f"{base}/runs/{ids['run']}/")
    page.wait_for_selector("#console .line.stdout")
    assert HOSTILE in page.inner_text("#console")
    page.wait_for_selector("#result table.value")
    assert HOSTILE in page.inner_text("#result")
    page.goto(f"{base}/automations/bulk/{ids['bulk']}/")
    page.wait_for_selector("#bulk-items tr")
    assert HOSTILE in page.inner_text("#bulk-items")
    page.goto(f"{base}/api/docs")  # Swagger UI, from our static files, under the policy
    page.wait_for_selector(".opblock-summary-path")
    assert "/api/scripts/{script_id}" in page.inner_text("#swagger-ui")
    page.goto(f"{base}/scripts/{ids['named']}/")
    page.wait_for_selector("#editor .ace_content")
    assert page.evaluate("oktoEditor.getValue()") == HOSTILE
    assert page.evaluate("window.__xss") is None and page.evaluate("window.__csp") == []


def test_a_signed_out_visitor_meets_the_policy_too(hostile_site, browser):
    base, _ = hostile_site
    page = browser.new_page()
    page.add_init_script(WATCH)
    response = page.goto(f"{base}/login/?{urlencode({'next': HOSTILE})}")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__xss") is None and page.evaluate("window.__csp") == []
