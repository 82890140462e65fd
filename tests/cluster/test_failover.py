"""Scale-out, proven (README "Production"): a bulk run over 500 simulated CPEs
on the production topology, one NATS node and one worker crashing in the
middle of it (tests/cluster/scenario.py says exactly how).

Slow on purpose: a 3-node NATS cluster, two web processes, two workers, two
schedulers and the ACS start as processes of their own, and 500 CPEs
register, about two minutes in all on two cores. Needs the machine's
PostgreSQL (DATABASE_URL's server, else 127.0.0.1:5432) and Redis
(REDIS_URL, else 127.0.0.1:6379), as CI has them; skipped with the reason
when either is missing. ``python -m bench.cluster`` prints the same
scenario's figures next to a run without failures.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.cluster.scenario import BulkOutcome, Scenario
from tests.cluster.topology import Topology, system_services

DEVICES = 500

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def topology(tmp_path_factory, mongo_uri):
    unavailable = system_services()
    if unavailable:
        pytest.skip(f"the cluster scenario needs the machine's services: {unavailable}")
    started = Topology(tmp_path_factory.mktemp("cluster"), mongo_uri)
    try:
        started.start()
        yield started
    finally:
        started.stop()
        _drop_mongo_database(mongo_uri, started.env["OKTOSCRIPTS_MONGO_DB"])


def _drop_mongo_database(uri: str, name: str) -> None:
    import pymongo

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        client.drop_database(name)
    finally:
        client.close()


async def crashing_bulk_run(topology: Topology) -> BulkOutcome:
    async with Scenario(topology, DEVICES) as scenario:
        return await scenario.bulk_run("failover", crash=True)


def test_a_bulk_run_survives_a_nats_node_and_a_worker_crashing(topology):
    outcome = asyncio.run(crashing_bulk_run(topology))
    failure, console = outcome.failure, outcome.console
    assert failure.at, f"the bulk run ended before the crash: {outcome}"

    # The bulk run finishes, every item succeeded, and each device (by its own
    # count) was changed exactly once.
    assert outcome.status == "finished"
    assert outcome.items == {"succeeded": DEVICES}, outcome.errors.most_common(5)
    assert (outcome.lost, outcome.doubled) == (0, 0)
    # No run is left queued or running (the lost ones are final, the watched
    # one was cancelled).
    assert outcome.runs_active == 0

    # The watched console kept streaming through the crash: lines kept coming,
    # each once and in order, and it ended with its run.
    assert console.closed == "", console.closed
    assert console.end is not None and console.end["status"] == "cancelled"
    assert console.seqs == list(range(1, len(console.seqs) + 1))
    assert console.lines_after(failure.at) >= 20
    assert console.longest_silence(failure.at) < 10.0
