"""A recorded run saved as a test fixture of its script, checked from the
command line (``runscript SCRIPT --fixture``: exit 0 passed, 1 failed with the
first difference, 6 diverged from the recording, 2 no such fixture) and
through a worker (the IDE's way: a replay run answered from the fixture's own
copy of the recording). Real worker, ACS and simulated CPE for the recording."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from oktoscripts.scripts import editing, fixtures
from tests.runs import conftest as _runs

from .conftest import until
from .test_replay import _finished

start_worker, close_async_db_connections = _runs.start_worker, _runs.close_async_db_connections
pytestmark = pytest.mark.django_db(transaction=True)

V1 = r"""local sn = args.serial
local function gpv(name)
  return send_cwmp_message(sn, "<cwmp:GetParameterValues><ParameterNames><string>" .. name
    .. "</string></ParameterNames></cwmp:GetParameterValues>", 0)
end
local model = gpv("Device.DeviceInfo.ModelName")["Device.DeviceInfo.ModelName"]
local ssid = gpv("Device.WiFi.SSID.1.SSID")["Device.WiFi.SSID.1.SSID"]
print("model " .. model)
return {model = model, ssid = ssid}
"""
# v2 asks another parameter second: it diverges from the recording at call 2 (line 7).
V2 = V1.replace(
    'gpv("Device.WiFi.SSID.1.SSID")["Device.WiFi.SSID.1.SSID"]',
    'gpv("Device.WiFi.Radio.1.Channel")["Device.WiFi.Radio.1.Channel"]',
)
# v3 makes the same calls but returns the SSID in capitals: a different result.
V3 = V1.replace("ssid = ssid}", "ssid = ssid:upper() .. '!'}")
# v4 the same result, another printed line.
V4 = V1.replace('print("model " .. model)', 'print("the model is " .. model)')


def _command(*argv: str) -> tuple[int, str]:
    """Run ``manage.py runscript`` in this process: (exit status, what it printed)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            call_command("runscript", *argv)
            code = 0
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue()


async def test_a_fixture_passes_fails_and_diverges_from_the_command_line_and_the_worker(
    fleet_factory, start_worker, nc
):
    from django.contrib.auth.models import User
    from django.core.management.base import CommandError

    from oktoscripts.scripts.start import Origin, Source, start_run

    fleet = await fleet_factory(1, data_model="TR-181")
    await until(lambda: fleet.stats.sessions_ok >= 1)
    cpe = fleet.cpes[0]
    await start_worker()

    def setup():
        user = User.objects.create_superuser("fixture-maker", "", "unused-password-1")
        script = editing.create_script(user, "wifi-facts", V1)
        run = start_run(
            Source.saved(script.versions.get(number=1)),
            user=user,
            args={"serial": cpe.serial},
            origin=Origin("user"),
        )
        return user, script, run

    user, script, run = await sync_to_async(setup)()
    recorded = await _finished(run.pk)
    assert recorded.status == "succeeded", recorded.error
    ssid = cpe.dm.value("Device.WiFi.SSID.1.SSID")

    def save():
        fixture = fixtures.save_from_run(recorded, "home gateway", user)
        for code in (V2, V3, V4):
            editing.save_version(user, script, code)
        return fixture

    fixture = await sync_to_async(save)()
    assert fixture.expected_result == {"model": recorded.result["model"], "ssid": ssid}
    assert fixture.expected_output == [f"model {recorded.result['model']}"]
    assert len(fixture.recording["calls"]) == 2 and fixture.args == {"serial": cpe.serial}

    requests_before = fleet.stats.connection_requests
    cmd = sync_to_async(_command, thread_sensitive=False)
    code, out = await cmd("wifi-facts", "--fixture", "home gateway", "--script-version", "1")
    assert code == 0, out
    assert "fixture 'home gateway' on v1: passed" in out

    code, out = await cmd("wifi-facts", "--fixture", "home gateway", "--script-version", "2")
    assert code == 6, out
    assert (
        "fixture 'home gateway' on v2: DIVERGED: diverged from the recording at device call 2 "
        '(line 7): the script asks names ["Device.WiFi.Radio.1.Channel"], the recording has '
        '["Device.WiFi.SSID.1.SSID"]' in out
    )

    code, out = await cmd("wifi-facts", "--fixture", "home gateway", "--script-version", "3")
    assert code == 1, out
    assert f'FAILED: result.ssid: expected "{ssid}", got "{ssid.upper()}!"' in out

    code, out = await cmd("wifi-facts", "--fixture", "all")  # the latest: v4
    assert code == 1, out
    assert (
        f'on v4: FAILED: output line 1: expected "model {recorded.result["model"]}", '
        f'got "the model is {recorded.result["model"]}"' in out
    )
    assert "1 fixture: 0 passed, 1 failed, 0 diverged" in out

    with pytest.raises(CommandError, match="wifi-facts has no fixture 'nope'"):
        await cmd("wifi-facts", "--fixture", "nope")
    assert fleet.stats.connection_requests == requests_before  # no device was asked

    # The IDE's way: replay runs on the worker, answered from the fixture's copy.
    def start(version):
        return fixtures.start_fixture_run(fixture, user, "user", version)

    passing = await _finished((await sync_to_async(start)(1)).pk)
    diverging = await _finished((await sync_to_async(start)(2)).pk)
    assert passing.fixture_id == fixture.pk and passing.mode == "replay"

    def verdicts():
        return (
            fixtures.run_verdict(passing, fixture),
            fixtures.run_verdict(diverging, fixture),
            fixtures.last_runs([fixture])[fixture.pk].pk,
        )

    passed, diverged, last = await sync_to_async(verdicts)()
    assert passed.passed, passed
    assert diverged.diverged and "device call 2 (line 7)" in diverged.difference
    assert last == diverging.pk
    assert fleet.stats.connection_requests == requests_before
    await asyncio.sleep(0)
