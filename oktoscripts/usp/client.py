"""The worker side of the controller's NATS service: send a USP Msg to an
agent through whichever controller process holds it."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from oktoscripts.usp import bus
from oktoscripts.usp.messages import Msg
from oktoscripts.usp.results import error_table

# Time the controller gets beyond the agent's timeout to send its own 408.
REPLY_MARGIN_S = 2.0


async def call_agent(
    nc: Client, to_id: str, msg: Msg, timeout_s: float, expect_response: bool = True
) -> Msg | dict[str, Any] | None:
    """The agent's response Msg; an error table (offline, unknown, timeout, no
    controller); or None for a request that expects no response."""
    request = bus.ControllerRequest(to_id, msg.SerializeToString(), timeout_s, expect_response)
    try:
        reply = await nc.request(
            bus.request_subject(), request.encode(), timeout=timeout_s + REPLY_MARGIN_S
        )
    except NoRespondersError:
        return error_table("503", "the USP controller is not running (python manage.py usp)")
    except NatsTimeoutError:
        return error_table("408", f"USP agent {to_id} did not answer within {timeout_s:g} s")
    result = bus.decode_reply(reply.data)
    if "msg" in result:
        return Msg.FromString(result["msg"])
    if "error" in result:
        return result["error"]
    return None
