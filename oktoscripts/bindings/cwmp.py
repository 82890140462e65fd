"""The TR-069 functions of the Lua API (docs/lua-api.md "TR-069 (CWMP)").

send_cwmp_message / send_cwmp_async_message hand the request to the ACS over
NATS (oktoscripts.cwmp.client) and wait for the CPE's answer;
listen_to_cwmp_event reads Inform events from JetStream; and the CWMP half of
refresh_device_parameters is registered with the devices dispatcher.
"""

from __future__ import annotations

import math
import time
from typing import Any

from oktoscripts.cwmp import client, events, paths
from oktoscripts.cwmp.soap import (
    ALL_MESSAGE_TYPES,
    RpcRequest,
    SoapError,
    request_from_payload,
)
from oktoscripts.devices import refresh
from oktoscripts.lua.binding import ArgumentError, Param, binding, describe_value
from oktoscripts.lua.values import LuaCallback
from oktoscripts.metrics import series

# A synchronous request whose CPE was woken but never calls gives up after
# this long even when the run may go on longer.
SYNC_TIMEOUT_S = 120.0
# Stop waiting a little before the run's wall-clock limit, so the script gets
# the "408" table rather than being ended by the limit.
DEADLINE_MARGIN_S = 0.25


def _non_empty(value: str) -> str | None:
    return None if value else "a non-empty string"


SERIAL = Param("serial", "string", check=_non_empty, doc="the CPE's serial number")
PAYLOAD = Param(
    "xml_payload",
    "string",
    label="xml payload",
    check=_non_empty,
    doc="the SOAP envelope, or just the RPC element",
)


def _message_type_expected(value: Any) -> str | None:
    valid = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value == int(value)
        and int(value) in ALL_MESSAGE_TYPES
    )
    return None if valid else f"an integer 0-{max(ALL_MESSAGE_TYPES)}"


# Required: the RPC cannot be told from the payload alone (completion, signature
# help and lint read this declaration, so it must say what the call needs).
MESSAGE_TYPE = Param(
    "message_type",
    "any",
    label="message type",
    check=_message_type_expected,
    doc="0 GetParameterValues, 1 SetParameterValues, 2 AddObject, "
    "3 DeleteObject, 4 GetParameterNames; extensions: 5 Reboot, 6 FactoryReset, "
    "7 Download, 8 Upload, 9 ScheduleInform, 10 GetParameterAttributes, "
    "11 SetParameterAttributes, 12 GetRPCMethods",
)

RETURNS = (
    "0: {[path] = value}; 1: true; 2: {instance_number, status}; 3: true; "
    "4: array of names; 5, 6, 9, 11: true; 7, 8: {status, start_time, complete_time}, "
    "or once the CPE's TransferComplete came {status = 0, transfer_complete = true, "
    "command_key, start_time, complete_time}; 10: array of {name, notification, "
    "access_list}; 12: array of method names; failure: {error_code, error_message, "
    "raw_response, parameter_faults}"
)


def _message_type(name: str, value: Any) -> int:
    """Argument #3 as an RPC number (check_arguments has checked it already;
    checked again for direct Python callers)."""
    if _message_type_expected(value) is not None:
        raise ArgumentError(
            f"{name}: argument #3 (message type) must be an integer 0-{max(ALL_MESSAGE_TYPES)}, "
            f"got {describe_value(value)}"
        )
    return int(value)


def _request(name: str, payload: str, message_type: Any) -> RpcRequest:
    mtype = _message_type(name, message_type)
    try:
        return request_from_payload(payload, mtype)
    except SoapError as exc:
        raise ArgumentError(
            f"{name}: argument #2 (xml payload) must be a {ALL_MESSAGE_TYPES[mtype]} request "
            f"({exc}), got {describe_value(payload)}"
        ) from None


def _nats(ctx: Any) -> Any:
    nc = getattr(ctx.services, "nats", None) if ctx.services else None
    if nc is None:
        raise RuntimeError("this run has no connection to the message bus")
    return nc


def _lua_result(answer: dict) -> Any:
    if answer.get("ok"):
        return answer["result"]
    error = answer.get("error") or {}
    return {
        "error_code": str(error.get("error_code", "500")),
        "error_message": str(error.get("error_message", "unknown error")),
        **{k: v for k, v in error.items() if k in ("raw_response", "parameter_faults")},
    }


async def call_device(
    ctx: Any, name: str, serial: str, request: RpcRequest, mode: str, record: bool = True
) -> dict:
    """Send ``request`` and wait within the run's time; records the call unless
    ``record`` is false (a step of a binding that records its own call once)."""
    line = getattr(ctx, "call_line", None)  # the script line of this call
    started = time.monotonic()

    async def transport(rpc: RpcRequest) -> dict:
        remaining = ctx.deadline - time.monotonic() - DEADLINE_MARGIN_S
        timeout = remaining if mode == "async" else min(remaining, SYNC_TIMEOUT_S)
        if timeout <= 0:
            return {
                "ok": False,
                "error": {"error_code": "408", "error_message": "no time left in the run"},
            }
        sent = time.monotonic()
        answer = await client.call(
            _nats(ctx), serial, rpc, mode=mode, timeout_s=timeout, call_id=ctx.device_call_id()
        )
        # Counted here: a call a plan intercepts never reaches a device.
        series.device_call(
            "cwmp", None if answer.get("ok") else _error_code(answer), time.monotonic() - sent
        )
        return answer

    gate = getattr(ctx, "gate", None)
    if gate is not None:  # a plan, a recording: oktoscripts/runs/gates.py
        answer = await gate.call(ctx, "cwmp", serial, request, transport)
    else:
        answer = await transport(request)
    if record:
        ctx.record_call(
            name,
            serial,
            time.monotonic() - started,
            bool(answer.get("ok")),
            line=line,
            request=request,
            answer=answer,
        )
    return answer


def _error_code(answer: dict) -> str:
    return str((answer.get("error") or {}).get("error_code", "500"))


@binding(
    "send_cwmp_message",
    params=[SERIAL, PAYLOAD, MESSAGE_TYPE],
    returns=RETURNS,
    doc="Send a TR-069 RPC to the CPE now (Connection Request if it is not in a session) "
    "and wait for its answer.",
    category="cwmp",
)
async def send_cwmp_message(ctx: Any, serial: str, xml_payload: str, message_type: Any) -> Any:
    request = _request("send_cwmp_message", xml_payload, message_type)
    return _lua_result(await call_device(ctx, "send_cwmp_message", serial, request, "sync"))


@binding(
    "send_cwmp_async_message",
    params=[SERIAL, PAYLOAD, MESSAGE_TYPE],
    returns=RETURNS,
    doc="Queue a TR-069 RPC for the CPE's next Inform (no Connection Request; survives "
    "restarts) and wait for its answer.",
    category="cwmp",
)
async def send_cwmp_async_message(
    ctx: Any, serial: str, xml_payload: str, message_type: Any
) -> Any:
    request = _request("send_cwmp_async_message", xml_payload, message_type)
    return _lua_result(await call_device(ctx, "send_cwmp_async_message", serial, request, "async"))


def _listen_forms(args: tuple) -> tuple:
    """(cb), (event, cb), (event, serial, cb), (event, serial, cb, parallel)
    -> (event, serial, cb, parallel)."""
    position = next((i for i, a in enumerate(args) if isinstance(a, LuaCallback)), None)
    if position is None or position > 2:
        return args
    before, after = list(args[:position]), list(args[position + 1 :])
    before += [None] * (2 - len(before))
    return (*before, args[position], *(after[:1] or [None]))


def _at_least_one(value: int) -> str | None:
    return None if value >= 1 else "an integer >= 1"


@binding(
    "listen_to_cwmp_event",
    params=[
        Param(
            "event",
            "string",
            optional=True,
            doc='event code number ("1"), full code ("1 BOOT"), M-code, or nil/"*" for all',
        ),
        Param("serial", "string", optional=True, doc='nil or "*" for every CPE'),
        Param(
            "callback",
            "function",
            doc="callback(ev) with ev.serial_number, ev.event, "
            "ev.event_name, ev.command_key, ev.timestamp",
        ),
        Param(
            "parallel",
            "integer",
            optional=True,
            check=_at_least_one,
            doc="events handled at once (default 1); the rest wait in order",
        ),
    ],
    returns="nil",
    doc="Call callback(ev) once for every EventStruct of every Inform matching the filters, "
    "from now on, none lost.",
    category="cwmp",
    normalize=_listen_forms,
)
async def listen_to_cwmp_event(
    ctx: Any, event: str | None, serial: str | None, callback: Any, parallel: int | None
) -> None:
    js = _nats(ctx).jetstream()
    await events.ensure_stream(js)
    source = await events.subscribe(js, event, serial, durable=ctx.listener_name())
    label = f"cwmp event {events.normalise_event_filter(event) or '*'} of {serial or '*'}"
    ctx.add_listener(source, callback, parallel=parallel or 1, name=label)


# -- refresh_device_parameters, CWMP half ----------------------------------


async def read_cwmp_parameters(ctx: Any, device: dict) -> dict[str, str] | None:
    """PPPoE username, WAN IP, WAN MAC and DeviceInfo of a CPE ({path: value}),
    None when the CPE could not be read. All candidate paths go in one request;
    a CPE that faults on one it lacks (9005) is asked path by path. The
    binding records the call (one trace line), not each request made here."""
    serial = device["serial"]
    data_model = device.get("data_model") or (device.get("cwmp") or {}).get("data_model")
    if data_model not in paths.PATHS:
        return None
    names = paths.candidates(data_model)
    name = "refresh_device_parameters"
    answer = await call_device(
        ctx, name, serial, RpcRequest("GetParameterValues", names=names), "sync", record=False
    )
    if answer.get("ok"):
        return answer["result"]
    if answer["error"].get("error_code") != "9005":
        return None
    values: dict[str, str] = {}
    for path in names:
        one = await call_device(
            ctx,
            name,
            serial,
            RpcRequest("GetParameterValues", names=[path]),
            "sync",
            record=False,
        )
        if one.get("ok"):
            values.update(one["result"])
        elif one["error"].get("error_code") != "9005":
            return None
    return values


refresh.register("cwmp", read_cwmp_parameters)
