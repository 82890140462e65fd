"""``manage.py acs`` and ``manage.py simulate --cwmp N`` as separate processes."""

import os
import signal
import subprocess
import sys
import time

from oktoscripts.config import BASE_DIR
from oktoscripts.launcher.embedded.ports import free_port


def manage(*args, env):
    return subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.communicate(timeout=15)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0]


def test_acs_and_simulator_processes(nats_url, mongo_uri, mongo_db, tmp_path):
    # As `up` runs them: the simulated CPEs talk HTTPS to the ACS, trusting the
    # installation's CA, each with a credential of its own.
    port, tls_port = free_port(), free_port()
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "MONGO_URI": mongo_uri,
        "OKTOSCRIPTS_DATA_DIR": str(tmp_path),
        "OKTOSCRIPTS_ACS_PORT": str(port),
        "OKTOSCRIPTS_ACS_TLS_PORT": str(tls_port),
        "OKTOSCRIPTS_ACS_PATH": "/cwmp",
    }
    acs = manage("acs", "--host", "127.0.0.1", env=env)
    sim = manage("simulate", "--cwmp", "3", "--prefix", "CMDSIM", "--interval", "1", env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            docs = list(mongo_db.devices.find({"serial": {"$regex": "^CMDSIM"}}))
            if len(docs) == 3 and all(
                "2 PERIODIC" in (d["cwmp"].get("last_events") or []) for d in docs
            ):
                break
            assert acs.poll() is None and sim.poll() is None
            time.sleep(0.3)
        else:
            raise AssertionError("simulated CPEs did not register and inform periodically")
        assert {d["data_model"] for d in docs} == {"TR-098", "TR-181"}
    finally:
        sim_out, acs_out = stop(sim), stop(acs)
    assert f"ACS listening on http://127.0.0.1:{port}/cwmp" in acs_out
    assert f"ACS listening on https://127.0.0.1:{tls_port}/cwmp" in acs_out
    assert f"simulating 3 CWMP CPEs against https://127.0.0.1:{tls_port}/cwmp" in sim_out
    usernames = {d["username"] for d in mongo_db.device_credentials.find()}
    assert {f"00A0B1-CMDSIM00000{i}" for i in range(3)} <= usernames
    assert "Traceback" not in acs_out + sim_out


def test_simulate_needs_a_count():
    out = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "simulate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "--cwmp N and/or --usp M" in out.stderr
