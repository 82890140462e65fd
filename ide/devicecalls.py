"""The device calls of a run for the run page's timeline and the console's
expanded call lines: from the run's stored metrics once it is over, from the
worker holding it while it runs (oktoscripts/runs/callbus.py)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from ide import wire
from oktoscripts.runs import callbus, live
from oktoscripts.runs.models import Run


@sync_to_async
def _stored(run_id: str) -> tuple[str, dict] | None:
    """(status, metrics); a replay's metrics get the recording that answered it."""
    row = Run.objects.filter(pk=run_id).values("status", "metrics", "replay_of_id").first()
    if row is None:
        return None
    metrics = dict(row["metrics"] or {})
    if row["replay_of_id"] and "recording" not in metrics:
        replayed = Run.objects.filter(pk=row["replay_of_id"]).values("metrics").first()
        recording = ((replayed or {}).get("metrics") or {}).get("recording")
        if recording is not None:
            metrics["recording"] = recording
    return row["status"], metrics


def _parts(metrics: dict) -> tuple[list[dict], list[dict], bool]:
    recording = metrics.get("recording") or {}
    return (
        metrics.get("device_calls") or [],
        recording.get("calls") or [],
        bool(recording.get("truncated")),
    )


async def listing(run_id: str) -> dict[str, Any] | None:
    """``{"calls": [...], "final", "truncated"}``; None: no such run."""
    stored = await _stored(run_id)
    if stored is None:
        return None
    status, metrics = stored
    if status in Run.ACTIVE:  # a queued run has made no call: no worker to ask
        answer = await callbus.ask(await live.client(), run_id)
        if answer is not None:
            return {"calls": answer["calls"], "final": False, "truncated": False}
        stored = await _stored(run_id)  # it may have ended meanwhile
        status, metrics = stored or (status, {})
    calls, recording, truncated = _parts(metrics)
    return {
        "calls": callbus.summary(calls, recording),
        "final": status in Run.FINAL,
        "truncated": truncated,
    }


async def one(run_id: str, seq: int) -> dict[str, Any] | None:
    """The device call of output line ``seq`` with its wire texts (``wire``
    None, saying why, when there is no recording of it); None: no such call."""
    stored = await _stored(run_id)
    if stored is None:
        return None
    status, metrics = stored
    found = None
    if status in Run.ACTIVE:
        answer = await callbus.ask(await live.client(), run_id, seq)
        if answer is not None:
            found = answer["call"]
            if found is None:
                return None
        else:
            stored = await _stored(run_id)
            status, metrics = stored or (status, {})
    if found is None:
        calls, recording, _ = _parts(metrics)
        found = callbus.find(calls, recording, seq)
        if found is None:
            return None
    return _shown(found)


def _shown(found: dict[str, Any]) -> dict[str, Any]:
    recorded = found.pop("recorded", None)
    found["protocol"] = recorded.get("protocol") if recorded else None
    found["method"] = callbus.method(recorded) if recorded else None
    found["wire"] = wire.render(recorded) if recorded else None
    if recorded is None:
        found["why"] = (
            "this call was not recorded (a plan's calls and those past the "
            "recording's limit keep no request or answer)"
        )
    return found
