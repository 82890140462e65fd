"""Device twins: snapshot and start a twin of a 5,000-parameter CPE, and how
fast the twin answers.

    .venv/bin/python -m bench.twins [--params 5000] [--calls 200]

Starts the embedded SecantusDB and nats-server (unless MONGO_URI / NATS_URL
name real ones); runs the ACS, one simulated TR-181 CPE grown to N
parameters (NAT.PortMapping instances) and the twin host in this process. Measures:

- twin a device: from the request (``twins.store.request``) to the twin
  running and online at the ACS (snapshot through the ACS: GetParameterNames
  of the tree, GetParameterValues in batches; stored in MongoDB; twin
  started, its first session done);
- the twin's answer to a GetParameterValues of 100 parameters, at the ACS:
  from the ACS handing the request to the twin's connection to the twin's
  response read and parsed by the ACS (the ACS runs in this process for that,
  sharing its event loop with the twin); and the whole call from Python
  (Connection Request, a session, the answer) for comparison.

Targets (issue 18): twin a 5,000-parameter device <= 10 s; the twin answers a
GetParameterValues of 100 parameters in <= 5 ms at the ACS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time

from bench.cwmp import percentiles, setup_environment
from bench.services import embedded_services


def grow(cpe, params: int) -> None:
    """Add port mappings until the CPE holds ``params`` parameters."""
    while len(cpe.dm.params) < params:
        cpe.dm.add_object(cpe.dm.root + "NAT.PortMapping.")


async def bench(options: argparse.Namespace) -> None:
    import nats
    from django.conf import settings

    from oktoscripts.cwmp import client
    from oktoscripts.cwmp.app import start_acs
    from oktoscripts.cwmp.config import AcsConfig
    from oktoscripts.cwmp.soap import RpcRequest
    from oktoscripts.devices.client import mongo_database
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.launcher.embedded.ports import free_port
    from oktoscripts.sim.cwmp_cpe import CpeFleet, CpeOptions, FleetCredentials
    from oktoscripts.twins import store
    from oktoscripts.twins.host import HostOptions, TwinHost

    db = mongo_database()
    credentials = CredentialStore(db)
    credentials.ensure_indexes()
    port = free_port()
    acs_url = f"http://127.0.0.1:{port}/"
    fleet = CpeFleet(
        1,
        CpeOptions(
            acs_url=acs_url,
            data_model="TR-181",
            credentials=FleetCredentials(secrets.token_bytes(16)),
            periodic_interval=3600,
        ),
        prefix="TWINBENCH",
    )
    credentials.create_or_update_many(fleet.credentials())
    acs = await start_acs(
        AcsConfig(host="127.0.0.1", port=port, tls_port=None, path="/"),
        nats_url=settings.NATS_URL,
        mongo_uri=settings.MONGO_URI,
        db_name=settings.MONGO_DB_NAME,
    )
    nc = await nats.connect(settings.NATS_URL)
    host = TwinHost(db, nc, HostOptions(acs_url=acs_url), credentials)
    try:
        await fleet.start(run=False)
        original = fleet.cpes[0]
        grow(original, options.params)
        original.start()
        while fleet.stats.sessions_ok < 1:
            await asyncio.sleep(0.05)
        print(
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; original "
            f"{original.serial}: {len(original.dm.params)} parameters, "
            f"{len(original.dm.objects())} objects",
            flush=True,
        )
        await measure_twinning(options, db, host, original, store)
        await measure_answers(options, nc, host, acs.acs, client, RpcRequest)
    finally:
        await host.stop()
        await fleet.stop()
        await nc.drain()
        await acs.stop()


async def measure_twinning(options, db, host, original, store) -> None:
    started = time.monotonic()
    twin = await asyncio.to_thread(store.request, db, original.serial, by="bench")
    await host.step()
    taken = time.monotonic() - started
    while (db.devices.find_one({"_id": twin["_id"]}) or {}).get("status") != 2:
        await asyncio.sleep(0.01)
    online = time.monotonic() - started
    doc = store.get(db, twin["_id"])
    snap = store.load_snapshot(db, original.serial, doc["snapshot"])
    print(
        f"twin a device of {snap['parameters']} parameters: snapshot taken and stored, twin "
        f"started in {taken:.2f} s; twin online at the ACS (first session done) after "
        f"{online:.2f} s (target <= 10 s)",
        flush=True,
    )


async def measure_answers(options, nc, host, acs, client, RpcRequest) -> None:
    twin = next(iter(host.running.values())).device
    names = [n for n in twin.dm.params if ".PortMapping." in n][:100]
    request = RpcRequest("GetParameterValues", names=names)
    # At the ACS: from the ACS handing its request to the connection to the twin's
    # response read and parsed by the ACS (the twin's whole share of the call).
    # Also the CPU the process spent in that window (the ACS and the twin share it):
    # what the load of the machine does not change, unlike the wall-clock time.
    sent_at: dict[int, tuple[float, float]] = {}
    answer_times: list[float] = []
    answer_cpu: list[float] = []
    send, respond = acs._send, acs._response

    def timed_send(session, pending):  # noqa: ANN001, ANN202
        sent_at[id(session)] = (time.perf_counter(), time.process_time())
        return send(session, pending)

    async def timed_response(session, envelope):  # noqa: ANN001, ANN202
        begin = sent_at.pop(id(session), None)
        if begin is not None and envelope.rpc == "GetParameterValuesResponse":
            answer_times.append(time.perf_counter() - begin[0])
            answer_cpu.append(time.process_time() - begin[1])
        return await respond(session, envelope)

    acs._send, acs._response = timed_send, timed_response
    whole: list[float] = []
    try:
        for _ in range(options.calls):
            begin = time.perf_counter()
            answer = await client.call(nc, twin.serial, request, timeout_s=30)
            whole.append(time.perf_counter() - begin)
            assert answer["ok"] and len(answer["result"]) == 100, answer
    finally:
        acs._send, acs._response = send, respond
    p50, p95 = percentiles(answer_times)
    print(
        f"the twin's answer to GetParameterValues of 100 parameters, at the ACS "
        f"({len(answer_times)} calls, load average {os.getloadavg()[0]:.2f}): "
        f"p50 {p50 * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms (target <= 5 ms)",
        flush=True,
    )
    p50, p95 = percentiles(answer_cpu)
    print(
        f"  CPU of this process in that window (ACS and twin): p50 {p50 * 1000:.2f} ms, "
        f"p95 {p95 * 1000:.2f} ms",
        flush=True,
    )
    p50, p95 = percentiles(whole)
    print(
        f"  the whole call from Python (Connection Request, session, answer): "
        f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    with embedded_services("bench-twins-", setup_environment):
        asyncio.run(bench(options))


if __name__ == "__main__":
    main()
