"""How workers reach the USP controller over NATS request/reply.

A request carries the target agent, the serialized USP Msg and how long the
caller can wait; the reply carries the agent's response Msg, or an error
table (offline, unknown agent, timeout), or ``sent`` for a request that
expects no response (an Operate with send_resp false).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from oktoscripts.bus import subjects


def request_subject() -> str:
    return subjects.subject("usp", "request")


def notify_subject() -> str:
    """USP notifications (ValueChange, Event, OperationComplete, ...) the controller received."""
    return subjects.subject("usp", "notify")


@dataclass(frozen=True)
class ControllerRequest:
    to_id: str
    msg: bytes  # a serialized usp.Msg
    timeout_s: float
    expect_response: bool = True

    def encode(self) -> bytes:
        return json.dumps(
            {
                "to_id": self.to_id,
                "msg": base64.b64encode(self.msg).decode(),
                "timeout_s": self.timeout_s,
                "expect_response": self.expect_response,
            }
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> ControllerRequest:
        raw = json.loads(data)
        return cls(
            to_id=str(raw["to_id"]),
            msg=base64.b64decode(raw["msg"]),
            timeout_s=float(raw["timeout_s"]),
            expect_response=bool(raw.get("expect_response", True)),
        )


def reply_msg(msg: bytes) -> bytes:
    return json.dumps({"msg": base64.b64encode(msg).decode()}).encode()


def reply_error(error: dict[str, Any]) -> bytes:
    return json.dumps({"error": error}).encode()


def reply_sent() -> bytes:
    return b'{"sent": true}'


def decode_reply(data: bytes) -> dict[str, Any]:
    """{"msg": bytes} | {"error": error table} | {"sent": True}"""
    raw = json.loads(data)
    if "msg" in raw:
        return {"msg": base64.b64decode(raw["msg"])}
    return raw
