"""How long ``python manage.py up`` takes a newcomer: from the command to a
green /healthz (first start from an empty data directory, then a second start
on the same directory), and from SIGTERM to the last process gone.

    python -m bench.up [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from oktoscripts.config import BASE_DIR
from oktoscripts.launcher.embedded.ports import free_port

SERVICE_SETTINGS = ("NATS_URL", "MONGO_URI", "DATABASE_URL", "MQTT_URL", "REDIS_URL")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def one_start(data_dir: Path) -> tuple[float, float]:
    """Seconds to a green /healthz, and seconds from SIGTERM to exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_SETTINGS}
    env.update(
        OKTOSCRIPTS_DATA_DIR=str(data_dir),
        OKTOSCRIPTS_WEB_PORT=str(port),
        # Fixed ports by default: free ones, so this `up` runs beside any other.
        OKTOSCRIPTS_ACS_PORT=str(free_port()),
        OKTOSCRIPTS_ACS_TLS_PORT=str(free_port()),
        OKTOSCRIPTS_USP_WS_PORT=str(free_port()),
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "manage.py"), "up"],
        env=env,
        cwd=BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not healthy(f"http://127.0.0.1:{port}/healthz"):
            if process.poll() is not None or time.perf_counter() - started > 120:
                raise SystemExit("up did not become healthy")
            time.sleep(0.05)
        ready = time.perf_counter() - started
        stopping = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        return ready, time.perf_counter() - stopping
    finally:
        if process.poll() is None:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    first, again, stops = [], [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            ready, stop = one_start(Path(tmp) / "var")
            first.append(ready)
            stops.append(stop)
            ready, stop = one_start(Path(tmp) / "var")
            again.append(ready)
            stops.append(stop)
    print(f"cpus: {os.cpu_count()}  rounds: {args.rounds}")
    print(
        f"first start to green /healthz:  median {statistics.median(first):.2f} s  "
        f"max {max(first):.2f} s"
    )
    print(
        f"second start to green /healthz: median {statistics.median(again):.2f} s  "
        f"max {max(again):.2f} s"
    )
    print(
        f"SIGTERM to everything stopped:  median {statistics.median(stops):.2f} s  "
        f"max {max(stops):.2f} s"
    )


if __name__ == "__main__":
    main()
