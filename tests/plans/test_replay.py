"""Recorded runs and replay, through a real worker: an ordinary run records
its device calls (request, answer, time, line); its replay answers them from
the recording without reaching the device; a version that asks something
else diverges, and the replay says where."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from oktoscripts.runs.models import Run
from oktoscripts.scripts import editing
from tests.runs import conftest as _runs

from .conftest import until

start_worker, close_async_db_connections = _runs.start_worker, _runs.close_async_db_connections
pytestmark = pytest.mark.django_db(transaction=True)

V1 = r"""local sn = args.serial
local function gpv(name)
  return send_cwmp_message(sn, "<cwmp:GetParameterValues><ParameterNames><string>" .. name
    .. "</string></ParameterNames></cwmp:GetParameterValues>", 0)
end
local model = gpv("Device.DeviceInfo.ModelName")["Device.DeviceInfo.ModelName"]
local ssid = gpv("Device.WiFi.SSID.1.SSID")["Device.WiFi.SSID.1.SSID"]
return {model = model, ssid = ssid}
"""
V2 = V1.replace(
    'gpv("Device.WiFi.SSID.1.SSID")["Device.WiFi.SSID.1.SSID"]',
    'gpv("Device.WiFi.Radio.1.Channel")["Device.WiFi.Radio.1.Channel"]',
)


async def _finished(run_id) -> Run:
    async def done():
        run = await Run.objects.aget(pk=run_id)
        return run if run.is_final else None

    return await until(done, timeout=60)


async def test_a_run_is_recorded_replayed_and_a_new_version_diverges(
    fleet_factory, start_worker, nc
):
    from django.contrib.auth.models import User

    from oktoscripts.scripts.replay import start_replay
    from oktoscripts.scripts.start import Origin, Source, start_run

    fleet = await fleet_factory(1, data_model="TR-181")
    await until(lambda: fleet.stats.sessions_ok >= 1)
    cpe = fleet.cpes[0]
    await start_worker()

    def setup():
        # (A superuser: the role groups of the migrations may be flushed by earlier tests.)
        user = User.objects.create_superuser("op-replay", "", "unused-password-1")
        script = editing.create_script(user, "replayed", V1)
        editing.save_version(user, script, V2)
        first = script.versions.get(number=1)
        run = start_run(
            Source.saved(first), user=user, args={"serial": cpe.serial}, origin=Origin("user")
        )
        return user, run

    user, run = await sync_to_async(setup)()
    recorded = await _finished(run.pk)
    assert recorded.status == "succeeded", recorded.error
    calls = recorded.metrics["recording"]["calls"]
    assert [c["line"] for c in calls] == [6, 7]
    assert calls[1]["request"]["names"] == ["Device.WiFi.SSID.1.SSID"]
    assert calls[1]["answer"] == {
        "ok": True,
        "result": {"Device.WiFi.SSID.1.SSID": cpe.dm.value("Device.WiFi.SSID.1.SSID")},
    }

    requests_before = fleet.stats.connection_requests
    replay = await sync_to_async(start_replay)(recorded, user, "user")
    replayed = await _finished(replay.pk)
    assert replayed.status == "succeeded", replayed.error
    assert replayed.result == recorded.result and replayed.replay_of_id == recorded.pk
    assert replayed.metrics["replay"] == {"answered": 2, "recorded": 2, "diverged": None}
    assert fleet.stats.connection_requests == requests_before  # no device was asked

    other = await sync_to_async(start_replay)(recorded, user, "user", 2)
    diverged = await _finished(other.pk)
    assert diverged.status == "failed"
    assert diverged.error["line"] == 7
    assert (
        "replay diverged at device call 2 (line 7): the script asks names "
        '["Device.WiFi.Radio.1.Channel"], the recording has '
        '["Device.WiFi.SSID.1.SSID"]' in diverged.error["message"]
    )
    assert diverged.metrics["replay"]["diverged"]["call"] == 2
    await asyncio.sleep(0)
