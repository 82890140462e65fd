"""The TR-369 functions of the Lua API (docs/lua-api.md "TR-369 (USP)").

send_usp_message hands the Msg to the USP controller over NATS
(oktoscripts.usp.client) and waits for the agent's response, matched by
msg_id; the result shapes are documented in oktoscripts/usp/results.py. The
USP half of refresh_device_parameters is registered with the devices
dispatcher.
"""

from __future__ import annotations

import time
from typing import Any

from oktoscripts.devices import refresh
from oktoscripts.lua.binding import ArgumentError, Param, binding, describe_value
from oktoscripts.metrics import series
from oktoscripts.usp import messages, results
from oktoscripts.usp.client import call_agent
from oktoscripts.usp.endpoint import endpoint_id_problem
from oktoscripts.usp.messages import Msg, PayloadError

# Stop waiting a little before the run's wall-clock limit, so the script gets
# the "408" table rather than being ended by the limit.
DEADLINE_MARGIN_S = 0.25

# What refresh_device_parameters reads from a TR-181 agent, in one Get.
REFRESH_PATHS = (
    "Device.DeviceInfo.",
    "Device.PPP.Interface.*.Username",
    "Device.PPP.Interface.*.IPCP.LocalIPAddress",
    "Device.IP.Interface.*.IPv4Address.*.IPAddress",
    "Device.Ethernet.Interface.*.MACAddress",
)


def _endpoint_id(value: str) -> str | None:
    problem = endpoint_id_problem(value)
    return f"a USP Endpoint ID ({problem})" if problem else None


ENDPOINT = Param(
    "serial", "string", check=_endpoint_id, doc="the agent's Endpoint ID, e.g. os::00D09E-sim-1"
)
# optional=True only lets nil through to parse_payload, which names the problem.
PAYLOAD = Param(
    "json_payload",
    "any",
    label="json payload",
    optional=True,
    doc="a USP Msg in the protobuf JSON mapping (a JSON string or a table)",
)

RETURNS = (
    "get: {[path] = value}; set: {[path] = new value}; add: {{instantiated_path, "
    "unique_keys}}; delete: {path, ...}; operate: output args; get_instances: "
    "{{instantiated_obj_path, unique_keys}}; get_supported_dm: {[object] = {...}}; "
    "failure: {error_code, error_message, param_errs}"
)


def _timeout_s(ctx: Any) -> float:
    from django.conf import settings

    remaining = ctx.deadline - time.monotonic() - DEADLINE_MARGIN_S
    return min(remaining, float(getattr(settings, "USP_TIMEOUT_S", 30.0)))


def _nats(ctx: Any) -> Any:
    nc = getattr(ctx.services, "nats", None) if ctx.services else None
    if nc is None:
        raise RuntimeError("this run has no connection to the message bus")
    return nc


def parse_payload(name: str, payload: Any) -> Msg:
    """The request Msg of argument #2, or the argument error naming what is wrong."""
    if not isinstance(payload, str | dict):
        raise ArgumentError(
            f"{name}: argument #2 (json payload) must be a JSON string or a "
            f"table, got {describe_value(payload)}"
        )
    try:
        return messages.parse_script_payload(payload)
    except PayloadError as exc:
        shown = describe_value(payload) if isinstance(payload, str) else "a table"
        raise ArgumentError(
            f"{name}: argument #2 (json payload) must be a USP request Msg ({exc}), got {shown}"
        ) from None


async def send_request(ctx: Any, name: str, endpoint_id: str, msg: Msg) -> Any:
    """Send ``msg`` within the run's time and give the script's result; records the call."""
    line = getattr(ctx, "call_line", None)  # the script line of this call
    started = time.monotonic()

    async def transport(request: Msg) -> Any:
        kind = messages.request_kind(request)
        expect_response = not (kind == "operate" and not request.body.request.operate.send_resp)
        timeout = _timeout_s(ctx)
        if timeout <= 0:
            return results.error_table("408", "no time left in the run")
        sent = time.monotonic()
        answer = await call_agent(_nats(ctx), endpoint_id, request, timeout, expect_response)
        if answer is None:  # an Operate that asked for no response: sent
            answer = {}
        elif isinstance(answer, Msg):
            answer = results.script_result(kind, answer)
        # Counted here: a call a plan intercepts never reaches a device.
        series.device_call(
            "usp",
            _error_code(answer) if results.is_error(answer) else None,
            time.monotonic() - sent,
        )
        return answer

    gate = getattr(ctx, "gate", None)
    if gate is not None:  # a plan, a recording: oktoscripts/runs/gates.py
        result = await gate.call(ctx, "usp", endpoint_id, msg, transport)
    else:
        result = await transport(msg)
    ctx.record_call(
        name,
        endpoint_id,
        time.monotonic() - started,
        not results.is_error(result),
        line=line,
        request=str(msg),
        answer=result,
    )
    return result


@binding(
    "send_usp_message",
    params=[ENDPOINT, PAYLOAD],
    returns=RETURNS,
    doc="Send a USP request (Get, Set, Add, Delete, Operate, GetInstances, GetSupportedDM) "
    "to an agent and wait for its response.",
    category="usp",
)
async def send_usp_message(ctx: Any, serial: str, json_payload: Any) -> Any:
    msg = parse_payload("send_usp_message", json_payload)
    return await send_request(ctx, "send_usp_message", serial, msg)


# -- refresh_device_parameters, USP half ----------------------------------


async def read_usp_parameters(ctx: Any, device: dict) -> dict[str, str] | None:
    """DeviceInfo, PPPoE username, WAN IP and MAC addresses of a TR-181 agent
    ({path: value}) in one Get; None when the agent could not be read. A path
    the agent does not implement is left out. The binding records the call."""
    endpoint_id = device["serial"]
    started = time.monotonic()
    msg = messages.request("get", param_paths=list(REFRESH_PATHS), max_depth=1)
    timeout = _timeout_s(ctx)
    answer = (
        await call_agent(_nats(ctx), endpoint_id, msg, timeout)
        if timeout > 0
        else results.error_table("408", "no time left in the run")
    )
    values: dict[str, str] | None = None
    if isinstance(answer, Msg) and messages.response_kind(answer) == "get_resp":
        values = {}
        for requested in answer.body.response.get_resp.req_path_results:
            for resolved in requested.resolved_path_results:
                for param, value in resolved.result_params.items():
                    values[resolved.resolved_path + param] = value
    latency = time.monotonic() - started
    series.device_call("usp", None if values is not None else _error_code(answer), latency)
    return values


def _error_code(answer: Any) -> str:
    """The error code of a call that failed (500: an answer of another kind)."""
    return str(answer["error_code"]) if results.is_error(answer) else "500"


refresh.register("usp", read_usp_parameters)
