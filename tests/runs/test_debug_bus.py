"""Debug runs over the bus: requests to whichever worker holds the run, events back."""

from __future__ import annotations

import asyncio
import json

import pytest

from oktoscripts.bus import subjects
from oktoscripts.runs import debugbus
from oktoscripts.runs.models import Run
from oktoscripts.runs.submit import asubmit_run

from .conftest import wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)

SOURCE = """local t = {name = "cpe", ports = {80, 443}}
local n = 0
for i = 1, 3 do
  n = n + i
end
return n
"""


async def next_event(sub) -> dict:
    msg = await sub.next_msg(timeout=20)
    return json.loads(msg.data)


async def test_a_debug_run_is_driven_through_the_worker_holding_it(nc, start_worker):
    await start_worker()
    await start_worker()  # two workers: only the one holding the run answers
    run_id = "7a1d1a57-5d6b-4a3c-9a10-1c2b3d4e5f61"
    events = await nc.subscribe(subjects.debug_events(run_id))
    await asubmit_run(SOURCE, run_id=run_id, nc=nc, debug=True)
    answer = await debugbus.ask(
        nc,
        run_id,
        {
            "op": "configure",
            "breakpoints": [{"line": 4, "condition": "i == 2"}],
        },
        wait_s=20,
    )
    assert answer["ok"] and answer["result"]["breakpoints"][0]["line"] == 4

    paused = await next_event(events)
    assert (paused["event"], paused["line"], paused["reason"]) == ("paused", 4, "breakpoint")
    scopes = (await debugbus.ask(nc, run_id, {"op": "scopes", "frame": 1}))["result"]
    local = await debugbus.ask(nc, run_id, {"op": "variables", "ref": scopes[0]["ref"]})
    by_name = {v["name"]: v for v in local["result"]["items"]}
    assert by_name["n"]["value"] == "1" and by_name["i"]["value"] == "2"
    ports = await debugbus.ask(nc, run_id, {"op": "variables", "ref": by_name["t"]["ref"]})
    assert {v["name"] for v in ports["result"]["items"]} == {"name", "ports"}
    watch = await debugbus.ask(nc, run_id, {"op": "evaluate", "expression": "t.ports[2] + i"})
    assert watch["result"]["value"] == "445"
    bad = await debugbus.ask(nc, run_id, {"op": "evaluate", "expression": "nope("})
    assert not bad["ok"] and "watch:1:" in bad["error"]
    wrong = await debugbus.ask(nc, run_id, {"op": "jump"})
    assert wrong == {"ok": False, "error": "unknown op 'jump'"}

    answer = await debugbus.ask(nc, run_id, {"op": "resume", "command": "over"})
    assert answer["ok"]
    assert (await next_event(events))["event"] == "resumed"
    assert (await next_event(events))["line"] == 4  # the next iteration
    await debugbus.ask(nc, run_id, {"op": "resume", "command": "continue"})
    assert (await next_event(events))["event"] == "resumed"
    ended = await next_event(events)
    assert ended == {"event": "ended", "status": "succeeded"}
    run = await wait_for_status(run_id, Run.FINAL)
    assert run.status == "succeeded" and run.result == 6 and run.debug
    with pytest.raises(debugbus.DebugUnavailable, match="not running"):
        await debugbus.ask(nc, run_id, {"op": "state"})


async def test_a_normal_run_has_no_debugger(nc, start_worker):
    await start_worker()
    run = await asubmit_run("sleep(0.5) return 1", nc=nc)
    await wait_for_status(run.pk, "running")
    with pytest.raises(debugbus.DebugUnavailable):
        await debugbus.ask(nc, str(run.pk), {"op": "state"})
    assert (await wait_for_status(run.pk, Run.FINAL)).status == "succeeded"


async def test_stop_a_paused_debug_run(nc, start_worker):
    await start_worker()
    run = await asubmit_run("local a = 1\nreturn a\n", nc=nc, debug=True)
    run_id = str(run.pk)
    events = await nc.subscribe(subjects.debug_events(run_id))
    await debugbus.ask(nc, run_id, {"op": "configure", "breakpoints": [{"line": 2}]}, wait_s=20)
    assert (await next_event(events))["event"] == "paused"
    state = await debugbus.ask(nc, run_id, {"op": "state"})
    assert state["result"]["state"] == "paused"
    await debugbus.ask(nc, run_id, {"op": "stop"})
    run = await wait_for_status(run_id, Run.FINAL)
    assert run.status == "cancelled"
    await asyncio.sleep(0)
