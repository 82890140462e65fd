"""Scale-out, proven: a bulk run on the production topology, then the same bulk
run while a NATS node and a worker crash.

    .venv/bin/python -m bench.cluster [--devices 500] [--concurrency 50]

Starts on this machine a 3-node NATS cluster (JetStream, every stream
replicated 3 times), a PostgreSQL database of its own on the machine's server
(DATABASE_URL's server when it names one, else 127.0.0.1:5432), the embedded
MongoDB (SecantusDB; MONGO_URI names a real one), Redis for the Channels
layer (REDIS_URL, else 127.0.0.1:6379), and as processes of their own two web
processes behind a round-robin proxy, two workers, two schedulers and the
ACS; then N simulated CPEs. Scenario: tests/cluster/scenario.py.

1. Without failures: a bulk run, one SetParameterValues per CPE.
2. With failures: the same bulk run (another ParameterKey) while a watched
   run prints; once 40% of it is done, one worker and the NATS node the
   other worker is connected to, leader of every stream of the platform, are
   SIGKILLed.

Printed for each: time from creating the bulk run to its "finished", item
statuses, devices never changed (lost) and changed twice (doubled) as the
CPEs count them; for 2., what crashed, how the watched console kept
streaming, and the ratio of the two times (target: at most 2x).
BENCH_KEEP_DIR=<dir> keeps every process's log there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from tests.cluster.scenario import BulkOutcome, Scenario
from tests.cluster.topology import Topology, system_services


def report(title: str, outcome: BulkOutcome) -> None:
    print(
        f"{title}: {outcome.status} in {outcome.seconds:.1f} s, items {outcome.items}; "
        f"lost {outcome.lost}, doubled {outcome.doubled}; "
        f"runs still queued or running: {outcome.runs_active}"
    )
    for error, count in outcome.errors.most_common(5):
        print(f"  {count} x {error}")
    failure, console = outcome.failure, outcome.console
    if failure is not None and failure.at:
        print(
            f"  crashed: NATS node {failure.nats_node} (leader of {sorted(failure.leaders_moved)}; "
            f"clients {failure.clients_on_node}) and {failure.worker}"
        )
    if console is not None and failure is not None and failure.at:
        seqs = console.seqs
        print(
            f"  watched console: {len(seqs)} lines, {console.lines_after(failure.at)} after the "
            f"crash, longest silence after it {console.longest_silence(failure.at):.1f} s, "
            f"in order without gaps: {seqs == list(range(1, len(seqs) + 1))}, "
            f"end: {(console.end or {}).get('status') or console.closed or 'none'}"
        )


async def scenario(topology: Topology, devices: int, concurrency: int, freeze: bool) -> None:
    async with Scenario(topology, devices, concurrency, freeze) as run:
        base = await run.bulk_run("base", crash=False)
        report(f"bulk run over {devices} CPEs, concurrency {concurrency}, no failure", base)
        crashed = await run.bulk_run("crash", crash=True)
        how = "falling silent (SIGSTOP)" if freeze else "crashing (SIGKILL)"
        report(f"the same with a NATS node {how} and a worker crashing at 40%", crashed)
        print(
            f"time with failure / without: {crashed.seconds / base.seconds:.2f}x (target <= 2x); "
            f"lost {crashed.lost}, doubled {crashed.doubled} (target 0, 0)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--freeze",
        action="store_true",
        help="the NATS node falls silent (SIGSTOP, its machine vanished) instead of crashing",
    )
    options = parser.parse_args()
    unavailable = system_services()
    if unavailable:
        raise SystemExit(f"bench.cluster needs the machine's services: {unavailable}")
    keep = os.environ.get("BENCH_KEEP_DIR")  # a directory: keep the process logs there
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp_name:
        tmp = Path(tmp_name)
        from oktoscripts.launcher.embedded.services import EmbeddedServices

        embedded = EmbeddedServices(tmp)
        mongo_uri = os.environ.get("MONGO_URI") or embedded.start_mongo()
        topology = Topology(tmp, mongo_uri)
        try:
            topology.start()
            asyncio.run(scenario(topology, options.devices, options.concurrency, options.freeze))
        finally:
            topology.stop()
            embedded.stop()
            if keep:
                for log in tmp.rglob("*.log"):
                    shutil.copy(log, Path(keep) / log.name)


if __name__ == "__main__":
    main()
