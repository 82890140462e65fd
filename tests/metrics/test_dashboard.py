"""The Grafana dashboard (grafana/oktoscripts-dashboard.json) queries only
series the platform exports, and shows every one of them."""

from __future__ import annotations

import json
import re

from prometheus_client import REGISTRY

from oktoscripts.automations.lag import event_stream_lag
from oktoscripts.config import BASE_DIR
from oktoscripts.metrics import series  # noqa: F401 - defines the series
from oktoscripts.metrics.collectors import devices_online

DASHBOARD = BASE_DIR / "grafana" / "oktoscripts-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> dict[str, str]:
    """Every sample name the platform's processes can export -> its family."""
    devices_online(None, "cwmp")  # registered by the ACS and the controller
    event_stream_lag(None)  # registered by the scheduler
    names = {}
    for family in REGISTRY.collect():
        if family.name.startswith("oktoscripts_"):
            for suffix in SUFFIXES[family.type]:
                names[family.name + suffix] = family.name
    return names


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_every_query_names_exported_series():
    names = exported()
    unknown = [
        (title, name)
        for title, expr in queries()
        for name in re.findall(r"\boktoscripts_\w+", expr)
        if name not in names
    ]
    assert unknown == []


def test_every_exported_family_is_on_the_dashboard():
    names = exported()
    shown = {
        names[name]
        for _, expr in queries()
        for name in re.findall(r"\boktoscripts_\w+", expr)
        if name in names
    }
    assert set(names.values()) - shown == set()


def test_every_panel_reads_the_chosen_prometheus():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
