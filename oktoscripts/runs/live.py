"""The live messages of a run on NATS, and how to read them.

``<prefix>.runs.<id>.output``: one message per output line,
``{"seq", "stream", "text", "level", "time"}`` — the same ``seq`` as the
stored RunOutputLine, so a late viewer shows the stored lines, then the live
ones with a greater ``seq``: nothing twice, nothing missing.

``<prefix>.runs.<id>.status``: ``{"run_id", "status", "time", ...}``; the final
status (succeeded, failed, cancelled, limit_exceeded, lost) is published only
after the run's result, error, metrics and output are stored, and carries
``error`` and, when small, ``result``.
"""

from __future__ import annotations

import json
import time
from typing import Any

# Live copies of huge lines are cut (the stored line keeps the full text).
LIVE_TEXT_MAX = 64 * 1024
# A final status carries the result when its JSON is at most this long.
LIVE_RESULT_MAX = 64 * 1024


def output_message(seq: int, stream: str, text: str, level: str | None, at: float) -> bytes:
    if len(text) > LIVE_TEXT_MAX:
        text = text[:LIVE_TEXT_MAX] + f"… [cut, {len(text)} characters in the stored output]"
    message = {"seq": seq, "stream": stream, "text": text, "level": level, "time": at}
    return json.dumps(message, ensure_ascii=False).encode()


def status_message(run_id: str, status: str, **details: Any) -> bytes:
    message = {"run_id": run_id, "status": status, "time": time.time()}
    if "result" in details:
        encoded = json.dumps(details["result"])
        if len(encoded) > LIVE_RESULT_MAX:
            details = {k: v for k, v in details.items() if k != "result"}
            details["result_stored"] = True
    message.update(details)
    return json.dumps(message, ensure_ascii=False).encode()


def decode(data: bytes) -> dict:
    return json.loads(data)
