"""``manage.py up``: every process serves /metrics where prometheus-targets.json
says, each with the series of what it does, and the Status page (Admins)
shows the figures the processes report over NATS."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from oktoscripts.config import BASE_DIR
from oktoscripts.twins import demos
from tests.test_up import Up, get, wait_until

from .scrape import families, samples, total, value
from .scrape import get as scrape

pytestmark = [pytest.mark.timeout(300)]

CWMP_SERIAL = "OKTOSIM000000"  # `simulate --cwmp 3`, the first CPE
USP_AGENT = "os::00D09E-sim-00001"  # `simulate --usp 3`, the first agent
# `up` starts 3 simulated CPEs and the built-in demo twins (all CWMP CPEs).
CWMP_ONLINE = 3 + len(demos.shipped())
SCRIPT = f"""
local gpv = send_cwmp_message("{CWMP_SERIAL}", [[<cwmp:GetParameterValues><ParameterNames>
  <string>Device.DeviceInfo.SerialNumber</string></ParameterNames></cwmp:GetParameterValues>]], 0)
local get = send_usp_message("{USP_AGENT}", {{header = {{msg_type = "GET"}},
  body = {{request = {{get = {{param_paths = {{"Device.DeviceInfo.SoftwareVersion"}}}}}}}}}})
return {{cwmp = gpv["Device.DeviceInfo.SerialNumber"], usp = get.error_code == nil}}
"""


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count >= 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError("no consecutive free ports")


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    os.environ["OKTOSCRIPTS_METRICS_PORT"] = str(free_ports(10))
    try:
        up = Up(tmp_path_factory.mktemp("metrics") / "var")
    finally:
        del os.environ["OKTOSCRIPTS_METRICS_PORT"]
    try:
        up.wait_ready()
        yield up
    finally:
        up.stop()


def targets(up: Up) -> dict[str, int]:
    """process name -> its /metrics port, as ``up`` wrote them for Prometheus."""
    found = json.loads((up.data_dir / "run" / "prometheus-targets.json").read_text())
    return {t["labels"]["process"]: int(t["targets"][0].rsplit(":", 1)[1]) for t in found}


class Scrape(dict):
    """A process's samples, and the families it exports (with or without samples)."""

    families: set[str] = set()


def scrape_all(up: Up) -> dict[str, dict]:
    out = {}
    for name, port in targets(up).items():
        status, body = scrape(port)
        assert status == 200, (name, body)
        out[name] = Scrape(samples(body))
        out[name].families = families(body)
    return out


def until(up: Up, check, what: str, timeout: float = 60) -> dict[str, dict]:
    found = {}

    def ready():
        nonlocal found
        found = scrape_all(up)
        return check(found)

    try:
        wait_until(ready, timeout, what)
    except AssertionError:
        raise AssertionError(f"{what}: last scrape {found}") from None
    return found


def admin_password(up: Up) -> str:
    return re.search(r"log in as admin, password (\S+)", up.output()).group(1)


def runscript(up: Up, path: str) -> subprocess.CompletedProcess:
    env = dict(up.env, OKTOSCRIPTS_DATA_DIR=str(up.data_dir))
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "runscript", path, "--remote"],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_process_serves_its_series(platform):
    names = set(targets(platform))
    workers = {n for n in names if n.startswith("worker-")}
    assert names == {"web", "acs", "usp", "scheduler", *workers} and workers
    found = until(
        platform,
        lambda f: (
            value(f["acs"], "oktoscripts_devices_online", protocol="cwmp") == CWMP_ONLINE
            and value(f["usp"], "oktoscripts_devices_online", protocol="usp") == 3
        ),
        "the simulated devices online in the ACS's and the controller's metrics",
    )
    assert "oktoscripts_runs_submitted" in found["web"].families
    for worker in workers:
        assert "oktoscripts_worker_runs_held" in found[worker].families
        assert value(found[worker], "oktoscripts_worker_concurrency") > 0
    assert value(found["acs"], "oktoscripts_acs_informs_total") >= 3
    assert value(found["acs"], "oktoscripts_acs_sessions_started_total") >= 3
    assert "oktoscripts_acs_sessions_open" in found["acs"].families
    # Agents said Boot! and got answers; the controller read each one's DeviceInfo.
    assert value(found["usp"], "oktoscripts_usp_messages_total", direction="in", type="notify") >= 3
    assert value(found["usp"], "oktoscripts_usp_messages_total", direction="out", type="get") >= 3
    assert value(found["usp"], "oktoscripts_usp_agents_connected") == 3
    assert "oktoscripts_event_stream_lag" in found["scheduler"].families


def test_a_script_s_device_calls_show_in_the_workers_and_the_protocol_processes(platform, tmp_path):
    before = scrape_all(platform)
    script = tmp_path / "calls.lua"
    script.write_text(SCRIPT)
    result = runscript(platform, str(script))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"cwmp": CWMP_SERIAL, "usp": True}

    def counted(found):
        workers = [f for name, f in found.items() if name.startswith("worker-")]
        return (
            sum(
                value(w, "oktoscripts_device_calls_total", protocol="cwmp", outcome="ok")
                for w in workers
            )
            == 1
            and sum(
                value(w, "oktoscripts_device_calls_total", protocol="usp", outcome="ok")
                for w in workers
            )
            == 1
            and sum(
                value(w, "oktoscripts_runs_finished_total", status="succeeded", started_by="cli")
                for w in workers
            )
            == 1
        )

    after = until(platform, counted, "the run and its two device calls in a worker's metrics")
    workers = [f for name, f in after.items() if name.startswith("worker-")]
    assert (
        sum(
            value(w, "oktoscripts_device_call_seconds_count", protocol="cwmp", outcome="ok")
            for w in workers
        )
        == 1
    )
    assert sum(value(w, "oktoscripts_run_queue_wait_seconds_count") for w in workers) >= 1
    # The CPE was woken for the call: one more session, and the agent got one more Get.
    assert total(after["acs"], "oktoscripts_acs_sessions_started_total") > total(
        before["acs"], "oktoscripts_acs_sessions_started_total"
    )
    assert value(
        after["usp"], "oktoscripts_usp_messages_total", direction="in", type="get_resp"
    ) > value(before["usp"], "oktoscripts_usp_messages_total", direction="in", type="get_resp")


def test_the_status_page_shows_what_the_processes_report(platform):
    jar_opener = logged_in_opener(platform)
    status, page = get(platform.url + "status/", jar_opener)
    assert status == 200
    for kind in ("web", "worker", "acs", "usp", "scheduler"):
        assert f"<td>{kind}</td>" in page, kind
    cwmp_online = re.search(
        r'data-figure="devices_online_cwmp">.*?<span class="figure">([\d.]+)</span>', page, re.S
    )
    assert cwmp_online and float(cwmp_online.group(1)) == CWMP_ONLINE


def logged_in_opener(up: Up) -> urllib.request.OpenerDirector:
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, page = get(up.url + "login/", opener)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": "admin", "password": admin_password(up), "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(up.url + "login/", data=form, headers={"Referer": up.url})
    with opener.open(request, timeout=10) as response:
        assert not response.url.endswith("/login/"), "the admin could not sign in"
    return opener
