"""A plan over 3 simulated CPEs in a real browser: "Plan" in the editor, the
plan shown as a diff on the run's page, "Apply this plan", the devices
changed. Real web process, worker, ACS and simulator processes, NATS and MongoDB."""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.browser_site import BROWSER_TEST, SHOTS, free_port, login, running_site

pytestmark = BROWSER_TEST
PASSWORD = "plan-browser-pass-77"
PREFIX = f"PLANB{os.getpid() % 1000:03d}"
SCRIPT = r"""-- wifi rename, planned first
local changed = {}
for _, d in ipairs(get_all_devices()) do
  if d.cwmp and d.sn:sub(1, 8) == "PREFIX" then
    local path = d.product_class == "IGD"
      and "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID" or "Device.WiFi.SSID.1.SSID"
    local r = send_cwmp_message(d.sn, "<cwmp:SetParameterValues><ParameterList>"
      .. "<ParameterValueStruct><Name>" .. path .. "</Name>"
      .. "<Value xsi:type=\"xsd:string\">renamed-net</Value></ParameterValueStruct>"
      .. "</ParameterList><ParameterKey>rename</ParameterKey></cwmp:SetParameterValues>", 1)
    changed[#changed + 1] = d.sn
  end
end
table.sort(changed)
return changed
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory, nats_url, mongo_uri):
    acs_port = free_port()
    setup = (
        "from django.contrib.auth.models import User, Group\n"
        "from oktoscripts.scripts import editing\n"
        f"u = User.objects.create_user('operator1', password='{PASSWORD}')\n"
        "u.groups.add(Group.objects.get(name='Operator'))\n"
        f"a = User.objects.create_user('author1', password='{PASSWORD}')\n"
        "a.groups.add(Group.objects.get(name='Author'))\n"
        f"s = editing.create_script(a, 'wifi-rename', {SCRIPT.replace('PREFIX', PREFIX)!r})\n"
        "print('SCRIPT', s.pk)\n"
    )
    data = tmp_path_factory.mktemp("plan-browser")
    settings = {
        "OKTOSCRIPTS_ACS_PORT": str(acs_port),
        "OKTOSCRIPTS_ACS_TLS_PORT": "off",
        "OKTOSCRIPTS_ACS_HOST": "127.0.0.1",
    }
    processes = {
        "worker": ["worker"],
        "acs": ["acs"],
        "simulate": [
            "simulate",
            "--cwmp",
            "3",
            "--prefix",
            PREFIX,
            "--acs-url",
            f"http://127.0.0.1:{acs_port}/",
            "--interval",
            "3600",
        ],
    }
    with running_site(data, nats_url, mongo_uri, setup, processes, settings) as base:
        yield base


def _devices_online(mongo_uri: str) -> int:
    import pymongo

    client = pymongo.MongoClient(mongo_uri)
    try:
        db = client[os.environ["OKTOSCRIPTS_MONGO_DB"]]
        return db.devices.count_documents(
            {
                "_id": {"$regex": f"^{PREFIX}"},
                "status": 2,
                "cwmp.connection_request.password": {"$exists": 1},
            }
        )
    finally:
        client.close()


def test_plan_over_three_devices_shown_as_a_diff_then_applied(site, browser, mongo_uri):
    deadline = time.monotonic() + 60
    while _devices_online(mongo_uri) < 3:
        assert time.monotonic() < deadline, "the simulated CPEs never came online"
        time.sleep(0.3)
    page = login(browser, site, "operator1", PASSWORD)
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.click("text=wifi-rename")
    page.wait_for_selector("#editor .ace_content")
    page.click("#plan-btn")
    page.wait_for_selector("#run-link:visible", timeout=30_000)
    page.wait_for_selector("#run-status:has-text('succeeded')", timeout=60_000)
    page.goto(page.eval_on_selector("#run-link", "a => a.href"))
    page.wait_for_selector("#plan .plan-row")
    page.screenshot(path=str(SHOTS / "plan-diff.png"), full_page=True)
    text = page.inner_text("#plan")
    assert "3 changes in 3 calls on 3 devices; nothing was written" in text
    assert text.count("renamed-net") == 3 and len(re.findall(r"home-\d+", text)) == 3
    assert page.locator("#plan .plan-device").count() == 3
    page.click("#apply-plan")
    page.wait_for_selector("h1:has-text('Applying a plan')")
    page.wait_for_selector("#run-status.succeeded", timeout=60_000)
    page.wait_for_selector("#result", timeout=10_000)
    page.wait_for_selector("#console .line:has-text('applied 1')", timeout=30_000)
    output = page.inner_text("#console")
    assert output.count("applied 1 planned call(s) to") == 3, output
    page.screenshot(path=str(SHOTS / "plan-applied.png"), full_page=True)
