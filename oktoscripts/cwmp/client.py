"""Calling a CPE through the ACS from another process (a worker running Lua).

The caller subscribes to its answer subject first, then hands the request to
an ACS over NATS; the ACS queues it in MongoDB and publishes the answer when
the CPE gave it. Waiting on a subject of our own (not on the request's reply)
is what lets an asynchronous request outlive a restart of the ACS: the record
stays in MongoDB, the next ACS delivers it at the CPE's next Inform and
publishes the answer to the same subject.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import nats.errors

from oktoscripts.bus import subjects
from oktoscripts.cwmp import answers
from oktoscripts.cwmp.soap import RpcRequest

ACCEPT_TIMEOUT_S = 5.0
# A request no ACS takes ("no responders": the ACS restarting, or moving to
# another server of a NATS cluster that lost one) is sent again for this long.
ACS_ABSENT_WAIT_S = 10.0
ACS_ABSENT_PAUSE_S = 0.25


async def call(
    nc: object, serial: str, request: RpcRequest, *, mode: str = "sync", timeout_s: float = 60.0
) -> dict:
    """The answer dict of answers.py: ``{"ok": True, "result": ...}`` or
    ``{"ok": False, "error": {...}}``; "408" when ``timeout_s`` passes."""
    request_id = uuid.uuid4().hex
    deadline = time.monotonic() + timeout_s
    sub = await nc.subscribe(subjects.cwmp_answer(request_id), max_msgs=1)
    queued = False
    try:
        payload = json.dumps(
            {
                "request_id": request_id,
                "serial": serial,
                "request": request.to_json(),
                "mode": mode,
                "timeout_s": timeout_s,
            }
        ).encode()
        try:
            ack = await _hand_over(nc, payload, min(deadline, time.monotonic() + ACS_ABSENT_WAIT_S))
        except nats.errors.NoRespondersError:
            return answers.error("503", "the ACS is not running")
        except nats.errors.TimeoutError:
            return answers.error("408", "the ACS did not take the request in time")
        reply = json.loads(ack.data)
        if not reply.get("queued"):
            return reply
        queued = True
        try:
            msg = await sub.next_msg(timeout=max(deadline - time.monotonic(), 0.001))
        except nats.errors.TimeoutError:
            return answers.error("408", f"the device did not answer within {timeout_s:g} s")
        queued = False
        return json.loads(msg.data)
    finally:
        if queued:  # timed out or cancelled: take the request out of the queue
            await asyncio.shield(_cancel(nc, request_id, serial))
        try:
            await sub.unsubscribe()
        except Exception:  # noqa: BLE001 - connection closing or max_msgs reached
            pass


async def _hand_over(nc: object, payload: bytes, give_up_at: float) -> object:
    """The ACS's reply to the request; no responders again after a pause until
    ``give_up_at`` (nobody received it, so sending it again is safe)."""
    while True:
        timeout = min(ACCEPT_TIMEOUT_S, max(give_up_at - time.monotonic(), 0.1))
        try:
            return await nc.request(subjects.cwmp_rpc(), payload, timeout=timeout)
        except nats.errors.NoRespondersError:
            if time.monotonic() + ACS_ABSENT_PAUSE_S >= give_up_at:
                raise
            await asyncio.sleep(ACS_ABSENT_PAUSE_S)


async def _cancel(nc: object, request_id: str, serial: str) -> None:
    try:
        await nc.publish(
            subjects.cwmp_cancel(),
            json.dumps({"request_id": request_id, "serial": serial}).encode(),
        )
    except Exception:  # noqa: BLE001 - the ACS drops it at its deadline anyway
        pass
