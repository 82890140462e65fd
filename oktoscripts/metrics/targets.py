"""The ``/metrics`` endpoints of the processes ``up`` starts.

The web process serves ``/metrics`` on its own port; every other platform
process gets its own port, OKTOSCRIPTS_METRICS_PORT (9460) and the next
ones, in the order of oktoscripts/launcher/processes.py. ``up`` writes where they are
to ``var/run/prometheus-targets.json``, in the format of Prometheus's
``file_sd_configs``, so a Prometheus beside it finds them all.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from oktoscripts.config import ConfigError
from oktoscripts.metrics import conf

# The web serves /metrics itself; the device twins host and the simulator
# stand in for devices and have none.
NOT_SERVED = ("web", "twins", "simulate")
ENV = "OKTOSCRIPTS_METRICS_PORT"


def with_ports(specs: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ProcessSpecs, each serving process given its port in its environment.
    A malformed setting leaves them without: each process then logs why."""
    try:
        base = conf.up_base_port()
    except ConfigError:
        base = None
    if base is None:
        return specs
    out, offset = [], 0
    for spec in specs:
        if spec.name not in NOT_SERVED:
            spec = dataclasses.replace(spec, env={**spec.env, ENV: str(base + offset)})
            offset += 1
        out.append(spec)
    return tuple(out)


def targets(specs: tuple[Any, ...], web_host: str, web_port: int) -> list[dict[str, Any]]:
    found = [{"targets": [f"{web_host}:{web_port}"], "labels": {"process": "web"}}]
    for spec in specs:
        port = spec.env.get(ENV)
        if port is not None:
            found.append({"targets": [f"{conf.host()}:{port}"], "labels": {"process": spec.name}})
    return found


def write_targets(run_dir: Path, specs: tuple[Any, ...], web_host: str, web_port: int) -> Path:
    path = run_dir / "prometheus-targets.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(targets(specs, web_host, web_port), indent=1))
    temporary.replace(path)
    return path
