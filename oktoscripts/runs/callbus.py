"""The device calls of a running run, from the worker that holds it.

A run's device calls are recorded in its worker's memory (``gates.Recorder``)
and stored with the run's metrics when it ends. While it runs, the IDE asks
the worker for them over NATS request/reply on ``run_calls(run_id)``: every
worker listens, only the one holding the run answers. Asking costs nothing
until someone asks, unlike sending every call's request and answer along with
its output line to followers that mostly never look at them.

A request is ``{"seq": <the seq of the call's output line>}`` or ``{}`` (every
call, without requests and answers); the answer
``{"ok": true, "calls": [...]}`` or ``{"ok": true, "call": {...} | null}``.
"""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from oktoscripts.bus import subjects

REQUEST_TIMEOUT_S = 2.0
MAX_REQUEST_BYTES = 1024


def summary(device_calls: list[dict[str, Any]], recording: list[dict[str, Any]]) -> list[dict]:
    """Each device call as the timeline shows it: its metrics entry with the
    protocol and method from its recording (when it was recorded)."""
    out = []
    for n, call in enumerate(device_calls, 1):
        recorded = _recorded(call, recording)
        out.append(
            {
                **{k: call.get(k) for k in ("name", "target", "latency_s", "ok", "line", "seq")},
                "n": n,
                "at": call.get("at") if call.get("at") is not None else (recorded or {}).get("at"),
                "protocol": (recorded or {}).get("protocol"),
                "method": method(recorded) if recorded else None,
                "recorded": recorded is not None,
            }
        )
    return out


def find(
    device_calls: list[dict[str, Any]], recording: list[dict[str, Any]], seq: int
) -> dict[str, Any] | None:
    """The device call whose output line is ``seq``, with its recorded request
    and answer (``recorded``: None when the recording does not have it)."""
    for n, call in enumerate(device_calls, 1):
        if call.get("seq") == seq:
            return {**call, "n": n, "recorded": _recorded(call, recording)}
    return None


def _recorded(call: dict[str, Any], recording: list[dict[str, Any]]) -> dict[str, Any] | None:
    index = call.get("recorded")
    if isinstance(index, int) and 0 <= index < len(recording):
        return recording[index]
    return None


def method(recorded: dict[str, Any]) -> str:
    """The RPC (CWMP) or message type (USP) of a recorded call."""
    request = recorded.get("request") or {}
    if recorded.get("protocol") == "cwmp":
        return str(request.get("method", ""))
    inner = (request.get("request") or {}) if isinstance(request, dict) else {}
    kind = next(iter(inner), "")
    return "".join(part.capitalize() for part in kind.split("_"))


def answer_request(device_calls: list[dict], recording: list[dict], data: bytes) -> bytes:
    """(Worker side.) The answer to one request about a run this worker holds."""
    try:
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
        request = json.loads(data or b"{}")
        seq = request.get("seq") if isinstance(request, dict) else None
        if seq is None:
            body: dict = {"ok": True, "calls": summary(device_calls, recording)}
        else:
            body = {"ok": True, "call": find(device_calls, recording, int(seq))}
    except (ValueError, TypeError, AttributeError) as exc:
        body = {"ok": False, "error": str(exc)}
    return json.dumps(body, default=str).encode()


async def ask(nc: Client, run_id: str, seq: int | None = None) -> dict | None:
    """(Web side.) The answer of the worker holding ``run_id``; None when no
    worker holds it (not started, or over: then its metrics have the calls)."""
    payload = json.dumps({} if seq is None else {"seq": seq}).encode()
    try:
        msg = await nc.request(subjects.run_calls(run_id), payload, timeout=REQUEST_TIMEOUT_S)
    except (NoRespondersError, NatsTimeout):
        return None
    answer = json.loads(msg.data)
    return answer if answer.get("ok") else None
