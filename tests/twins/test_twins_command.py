"""``manage.py twins``: the twin host as its own process, and the admin
commands that make, list, reset and delete twins (no Lua, no IDE)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from oktoscripts.cwmp import client
from oktoscripts.cwmp.soap import RpcRequest
from tests.processes import ROOT, ManagePyProcess

from .conftest import until


def _env(nats_url, mongo_uri, acs, tmp_path):
    env = dict(os.environ)
    env.update(
        {
            "NATS_URL": nats_url,
            "MONGO_URI": mongo_uri,
            "OKTOSCRIPTS_ACS_PORT": str(acs.port),
            "OKTOSCRIPTS_ACS_TLS_PORT": "off",
            "OKTOSCRIPTS_ACS_PATH": "/acs",
            "OKTOSCRIPTS_DATA_DIR": str(tmp_path),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def twins(env, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "twins", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_twin_host_process_and_admin_commands(
    fleet_factory, acs, nats_url, mongo_uri, mongo_db, nc, tmp_path
):
    fleet = await fleet_factory(1, data_model="TR-098")
    await until(lambda: fleet.stats.sessions_ok >= 1)
    serial = fleet.cpes[0].serial
    env = _env(nats_url, mongo_uri, acs, tmp_path)
    host = ManagePyProcess("twins", ["run"], env, tmp_path / "twins.log")
    try:
        await asyncio.to_thread(host.wait_ready, 60)
        made = await asyncio.to_thread(twins, env, "create", serial, "--name", "LAB-TWIN-1")
        assert made.returncode == 0, made.stderr
        assert '"state": "running"' in made.stdout and '"snapshot": 1' in made.stdout
        await until(
            lambda: (mongo_db.devices.find_one({"_id": "LAB-TWIN-1"}) or {}).get("status") == 2,
            timeout=30,
        )
        name = "InternetGatewayDevice.DeviceInfo.ModelName"
        answer = await client.call(
            nc, "LAB-TWIN-1", RpcRequest("GetParameterValues", names=[name]), timeout_s=15
        )
        assert answer == {"ok": True, "result": {name: fleet.cpes[0].dm.value(name)}}

        listed = await asyncio.to_thread(twins, env, "list")
        assert f"LAB-TWIN-1\trunning\tof {serial}\tsnapshot 1" in listed.stdout
        again = await asyncio.to_thread(twins, env, "create", serial, "--name", "LAB-TWIN-1")
        assert again.returncode != 0 and "already exists" in again.stderr
        unknown = await asyncio.to_thread(twins, env, "reset", "NO-SUCH-TWIN")
        assert unknown.returncode != 0 and "no twin 'NO-SUCH-TWIN'" in unknown.stderr
        assert (await asyncio.to_thread(twins, env, "reset", "LAB-TWIN-1")).returncode == 0
        gone = await asyncio.to_thread(twins, env, "delete", "LAB-TWIN-1")
        assert gone.returncode == 0 and "deleted" in gone.stdout
        await until(lambda: mongo_db.devices.find_one({"_id": "LAB-TWIN-1"}) is None)

        # The built-in demo twins, asked for once: the running host starts them.
        demo = await asyncio.to_thread(twins, env, "demo")
        assert demo.returncode == 0, demo.stderr
        assert "DEMO098GW0001: demo twin" in demo.stdout
        await until(
            lambda: (mongo_db.devices.find_one({"_id": "DEMO098GW0001"}) or {}).get("status") == 2,
            timeout=30,
        )
        listed = await asyncio.to_thread(twins, env, "list")
        assert "DEMO181GW0001\trunning\tof demo:gateway-tr181" in listed.stdout
        for serial_ in ("DEMO098GW0001", "DEMO181GW0001", "DEMOSIM0001"):
            await asyncio.to_thread(twins, env, "delete", serial_)
    finally:
        await asyncio.to_thread(host.stop)
