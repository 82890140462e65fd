"""One MongoDB client factory (oktoscripts/devices/client.py new_client): every
client of the platform has the same options, dates come back aware of UTC."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_factory_makes_mongo_clients():
    factory = ROOT / "oktoscripts" / "devices" / "client.py"
    made = []
    for path in [
        *ROOT.glob("oktoscripts/**/*.py"),
        *ROOT.glob("ide/**/*.py"),
        *ROOT.glob("bench/**/*.py"),
    ]:
        if path == factory:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("MongoClient"):
                made.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert made == []


def test_the_database_of_run_hosts_gives_aware_dates(mongo_uri):
    """The worker's and runscript's database (runs/services.py) used to be the
    one client without tz_aware: dates of devices came back naive there."""
    from oktoscripts.runs.services import build_services, close_services

    services = build_services(None)
    try:
        collection = services.mongo["tz_probe"]
        stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        collection.insert_one({"_id": "probe", "at": stamp})
        assert collection.find_one({"_id": "probe"})["at"] == stamp  # aware: equal to an aware one
        collection.drop()
    finally:
        close_services(services)
