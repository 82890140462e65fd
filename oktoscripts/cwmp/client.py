"""Calling a CPE through the ACS from another process (a worker running Lua).

The caller subscribes to its answer subject first, then hands the request to
an ACS over NATS; the ACS queues it in MongoDB and publishes the answer when
the CPE gave it. Waiting on a subject of our own (not on the request's reply)
is what lets an asynchronous request outlive a restart of the ACS: the record
stays in MongoDB, the next ACS delivers it at the CPE's next Inform and
publishes the answer to the same subject.

A call made with a ``call_id`` (the n-th device call of a run that may be run
again after its worker died) is idempotent: its request id derives from the
call id and the request, the ACS keeps its answer (queue.py), and the same
call made again (by the run's next attempt, or by this caller when no answer
came within RECHECK_S: it may have been published while this process was
moving to another NATS server) gets that answer instead of reaching the CPE
a second time.
"""

from __future__ import annotations

import asyncio
import hashlib
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
ACS_ABSENT_WAIT_S = 15.0
ACS_ABSENT_PAUSE_S = 0.25
# A call with a call id asks the ACS again after this long without an answer.
RECHECK_S = {"sync": 5.0, "async": 30.0}


def call_request_id(call_id: str, serial: str, request: RpcRequest) -> str:
    """The same for the same call: another request to the same device at that
    point of a run (a script that changed) is another request."""
    identity = json.dumps([call_id, serial, request.to_json()], sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


async def call(
    nc: object,
    serial: str,
    request: RpcRequest,
    *,
    mode: str = "sync",
    timeout_s: float = 60.0,
    call_id: str | None = None,
) -> dict:
    """The answer dict of answers.py: ``{"ok": True, "result": ...}`` or
    ``{"ok": False, "error": {...}}``; "408" when ``timeout_s`` passes."""
    request_id = call_request_id(call_id, serial, request) if call_id else uuid.uuid4().hex
    deadline = time.monotonic() + timeout_s
    sub = await nc.subscribe(subjects.cwmp_answer(request_id), max_msgs=1)
    queued = False
    try:

        def payload() -> bytes:
            return json.dumps(
                {
                    "request_id": request_id,
                    "serial": serial,
                    "request": request.to_json(),
                    "mode": mode,
                    "timeout_s": max(deadline - time.monotonic(), 0.001),
                    "keep": call_id is not None,
                }
            ).encode()

        try:
            ack = await _hand_over(nc, payload(), deadline, idempotent=call_id is not None)
        except nats.errors.NoRespondersError:
            return answers.error("503", "the ACS is not running")
        except nats.errors.TimeoutError:
            return answers.error("408", "the ACS did not take the request in time")
        reply = json.loads(ack.data)
        if not reply.get("queued"):
            return reply
        queued = True
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await sub.next_msg(timeout=min(left, RECHECK_S[mode]) if call_id else left)
            except nats.errors.TimeoutError:
                if call_id and (kept := await _ask_again(nc, payload())) is not None:
                    queued = False
                    return kept
                continue
            queued = False
            return json.loads(msg.data)
        return answers.error("408", f"the device did not answer within {timeout_s:g} s")
    finally:
        if queued:  # timed out or cancelled: take the request out of the queue
            await asyncio.shield(_cancel(nc, request_id, serial))
        try:
            await sub.unsubscribe()
        except Exception:  # noqa: BLE001 - connection closing or max_msgs reached
            pass


async def _ask_again(nc: object, payload: bytes) -> dict | None:
    """The answer the ACS kept for this call; None while it waits (or the ACS
    cannot be asked right now: the next round asks again)."""
    try:
        reply = json.loads(
            (await nc.request(subjects.cwmp_rpc(), payload, timeout=ACCEPT_TIMEOUT_S)).data
        )
    except (nats.errors.Error, ValueError):
        return None
    return None if reply.get("queued") else reply


async def _hand_over(nc: object, payload: bytes, deadline: float, idempotent: bool) -> object:
    """The ACS's reply to the request, which is sent again after a pause when
    nobody received it (no responders; for ACS_ABSENT_WAIT_S at most), and, if
    ``idempotent`` (a call id: the ACS knows it by its id), when no reply came
    (it reached an ACS, or left this process, through a NATS server that died
    or fell silent; until ``deadline``)."""
    absent_until = min(deadline, time.monotonic() + ACS_ABSENT_WAIT_S)
    while True:
        timeout = min(ACCEPT_TIMEOUT_S, max(deadline - time.monotonic(), 0.1))
        try:
            return await nc.request(subjects.cwmp_rpc(), payload, timeout=timeout)
        except nats.errors.NoRespondersError:
            if time.monotonic() + ACS_ABSENT_PAUSE_S >= absent_until:
                raise
        except nats.errors.TimeoutError:
            if not idempotent or time.monotonic() + ACS_ABSENT_PAUSE_S >= deadline:
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
