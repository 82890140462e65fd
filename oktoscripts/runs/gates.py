"""The one point every device call of a run goes through: its gate.

``send_cwmp_message`` / ``send_cwmp_async_message`` and ``send_usp_message``
hand each request to ``ctx.gate.call(ctx, protocol, target, request,
transport)`` when the run has a gate; ``transport(request)`` sends any
request of that protocol to the target for real and gives the binding's
answer (CWMP: the ACS's answer dict; USP: the script's result table).

``Planner`` (a run in plan mode) sends every read but intercepts every
change: CWMP SetParameterValues, AddObject, DeleteObject; USP Set, Add,
Delete, Operate. It reads the current value of what would change, answers
what the device would most likely answer (success shapes; tables get
``planned = true``; AddObject the next instance number after the highest
one there), and records per device each call with its changes (before,
after), in order, with the script line that asked for it. The plan goes to
the run's metrics (``metrics.plan``): stored with the run, shown as a diff,
applied by a second run (``oktoscripts/scripts/apply.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format

from oktoscripts.lua.binding import ArgumentError

Transport = Callable[[Any], Awaitable[Any]]

# What reads; every other RPC or message changes something and is planned, not sent
# (SetParameterValues, AddObject, DeleteObject, Reboot, FactoryReset, Download,
# Upload, ScheduleInform, SetParameterAttributes; USP Set, Add, Delete, Operate).
CWMP_READS = ("GetParameterValues", "GetParameterNames", "GetParameterAttributes", "GetRPCMethods")
USP_READS = ("get", "get_instances", "get_supported_dm", "get_supported_protocol")
# Calls kept in one plan: a script looping over writes must not grow a run's
# metrics without bound (what is left out is counted).
MAX_PLANNED_CALLS = 10_000


def for_mode(mode: str, recording: dict[str, Any] | None = None) -> Any:
    """The gate of a run of this mode: a plan, a replay of ``recording``, or
    (an ordinary run) a recording of its calls."""
    if mode == "plan":
        return Planner()
    if mode == "replay":
        return Replayer(recording or {})
    return Recorder()


def request_json(protocol: str, request: Any) -> dict[str, Any]:
    """A request as JSON, the same for the same request however the script wrote it."""
    if protocol == "cwmp":
        return request.to_json()
    return json_format.MessageToDict(request.body, preserving_proto_field_name=True)


class Recorder:
    """The gate of an ordinary run: every device call goes out, and is recorded
    with its request, answer, time and script line (``metrics.recording``), up to
    MAX_RECORDED calls and MAX_RECORDED_BYTES of answers: what a replay answers from."""

    MAX_RECORDED = 5_000
    MAX_RECORDED_BYTES = 4 * 1024 * 1024

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.size = 0
        self.truncated = False
        self._last: int | None = None  # the index of the call just recorded

    async def call(
        self, ctx: Any, protocol: str, target: str, request: Any, transport: Transport
    ) -> Any:
        line = ctx.call_line
        started = time.time()
        answer = await transport(request)
        self._last = None
        if not self.truncated:
            size = len(json.dumps(answer, default=str))
            if len(self.calls) >= self.MAX_RECORDED or self.size + size > self.MAX_RECORDED_BYTES:
                self.truncated = True
            else:
                self.size += size
                call = {
                    "protocol": protocol,
                    "target": target,
                    "line": line,
                    "at": round(started, 6),
                    "latency_s": round(time.time() - started, 6),
                    "request": request_json(protocol, request),
                    "answer": answer,
                }
                if protocol == "usp":  # the rest of the message as sent (its msg_id)
                    call["header"] = json_format.MessageToDict(
                        request.header, preserving_proto_field_name=True
                    )
                self._last = len(self.calls)
                self.calls.append(call)
        return answer

    def take_recorded(self) -> int | None:
        """The index of the call recorded last, once (``ctx.record_call`` asks
        right after the binding's ``call`` returned, before anything else runs
        on the loop, so it is that call's)."""
        last, self._last = self._last, None
        return last

    def metrics(self) -> dict[str, Any]:
        if not self.calls and not self.truncated:
            return {}
        return {"recording": {"calls": self.calls, "truncated": self.truncated}}


class ReplayDiverged(ArgumentError):
    """The script asked for something the recording does not have at that point
    (a Lua error at the script's line, like a binding's refusal)."""


class Replayer:
    """The gate of a replay: each device call is answered from the recording, in
    order, nothing reaches a device; the first call that is not the recording's
    next one ends the run, saying where (``metrics.replay``)."""

    def __init__(self, recording: dict[str, Any]) -> None:
        self.calls = list(recording.get("calls") or [])
        self.truncated = bool(recording.get("truncated"))
        self.position = 0
        self.diverged: dict[str, Any] | None = None
        self._last: int | None = None  # the recorded call that answered last

    async def call(
        self, ctx: Any, protocol: str, target: str, request: Any, transport: Transport
    ) -> Any:
        line = ctx.call_line
        asked = {"protocol": protocol, "target": target, "request": request_json(protocol, request)}
        if self.position >= len(self.calls):
            more = " (the recording was cut short)" if self.truncated else ""
            return self._diverge(
                line, asked, None, f"the recording has no call {self.position + 1}{more}"
            )
        recorded = self.calls[self.position]
        expected = {k: recorded[k] for k in ("protocol", "target", "request")}
        if asked != expected:
            return self._diverge(line, asked, recorded, _difference(asked, expected))
        self._last = self.position
        self.position += 1
        return recorded["answer"]

    def take_recorded(self) -> int | None:
        """The index (in the replayed recording) of the call that answered last, once."""
        last, self._last = self._last, None
        return last

    def _diverge(self, line: int | None, asked: dict, recorded: dict | None, why: str) -> Any:
        self.diverged = {
            "call": self.position + 1,
            "line": line,
            "asked": asked,
            "recorded": recorded
            and {k: recorded[k] for k in ("protocol", "target", "request", "line")},
            "why": why,
        }
        where = f"line {line}" if line else "a call"
        raise ReplayDiverged(f"replay diverged at device call {self.position + 1} ({where}): {why}")

    def metrics(self) -> dict[str, Any]:
        return {
            "replay": {
                "answered": self.position,
                "recorded": len(self.calls),
                "diverged": self.diverged,
            }
        }


def _difference(asked: dict[str, Any], expected: dict[str, Any]) -> str:
    for key in ("protocol", "target"):
        if asked[key] != expected[key]:
            return f"the script asks {key} {asked[key]!r}, the recording has {expected[key]!r}"
    a, e = asked["request"], expected["request"]
    for key in sorted(set(a) | set(e)):
        if a.get(key) != e.get(key):
            return (
                f"the script asks {key} {json.dumps(a.get(key))}, the recording has "
                f"{json.dumps(e.get(key))}"
            )
    return "the requests differ"


class Planner:
    """The gate of a run in plan mode."""

    def __init__(self) -> None:
        self.devices: dict[str, dict[str, Any]] = {}  # target -> {"protocol", "calls"}
        self.left_out = 0
        self.overhead_s = 0.0  # time spent planning beyond the reads it sends
        self._planned_values: dict[tuple[str, str], str] = {}  # what earlier changes set
        self._next_instance: dict[tuple[str, str], int] = {}

    async def call(
        self, ctx: Any, protocol: str, target: str, request: Any, transport: Transport
    ) -> Any:
        line = ctx.call_line
        if protocol == "cwmp" and request.method not in CWMP_READS:
            return await self._cwmp(target, request, transport, line)
        if protocol == "usp":
            from oktoscripts.usp import messages

            kind = messages.request_kind(request)
            if kind not in USP_READS:
                return await self._usp(target, kind, request, transport, line)
        return await transport(request)

    def metrics(self) -> dict[str, Any]:
        return {
            "plan": {
                "devices": self.devices,
                "left_out": self.left_out,
                "overhead_s": round(self.overhead_s, 6),
            }
        }

    # ---- bookkeeping -------------------------------------------------------------------

    def _record(self, target: str, protocol: str, call: dict[str, Any]) -> None:
        calls = self.devices.setdefault(target, {"protocol": protocol, "calls": []})["calls"]
        if sum(len(d["calls"]) for d in self.devices.values()) >= MAX_PLANNED_CALLS:
            self.left_out += 1
            return
        calls.append(call)
        for change in call["changes"]:
            if change["op"] == "set":
                self._planned_values[(target, change["path"])] = change["after"]

    def _before(self, target: str, path: str, read: dict[str, str] | None) -> tuple[Any, bool]:
        """(value, read from the device): an earlier planned change wins."""
        planned = self._planned_values.get((target, path))
        if planned is not None:
            return planned, False
        if read is None or path not in read:
            return None, False
        return read[path], True

    def _instance(self, target: str, table: str, existing: list[int]) -> int:
        key = (target, table)
        number = max([self._next_instance.get(key, 0), *existing]) + 1
        self._next_instance[key] = number
        return number

    # ---- CWMP --------------------------------------------------------------------------

    async def _cwmp(
        self, target: str, request: Any, transport: Transport, line: int | None
    ) -> dict:
        from oktoscripts.cwmp.soap import RpcRequest

        if request.method == "SetParameterValues":
            names = [name for name, _, _ in request.values]
            answer = await transport(RpcRequest("GetParameterValues", names=names))
            began = time.perf_counter()
            read = answer["result"] if answer.get("ok") else None
            changes = []
            for name, value, xsd in request.values:
                before, checked = self._before(target, name, read)
                changes.append(
                    {
                        "op": "set",
                        "path": name,
                        "before": before,
                        "after": value,
                        "type": xsd,
                        "checked": checked,
                    }
                )
            result: dict = {"ok": True, "result": True}
        elif request.method == "AddObject":
            answer = await transport(
                RpcRequest("GetParameterNames", path=request.object_name, next_level=True)
            )
            began = time.perf_counter()
            existing = (
                _instance_numbers(request.object_name, answer.get("result") or [])
                if answer.get("ok")
                else []
            )
            number = self._instance(target, request.object_name, existing)
            changes = [
                {
                    "op": "add",
                    "path": request.object_name,
                    "before": None,
                    "after": f"{request.object_name}{number}.",
                    "checked": False,
                    "instance": number,
                }
            ]
            result = {
                "ok": True,
                "result": {"instance_number": number, "status": 0, "planned": True},
            }
        elif request.method != "DeleteObject":  # Reboot, Download, ...: an action
            began = time.perf_counter()
            changes = [
                {
                    "op": request.method,
                    "path": request.args.get("URL", ""),
                    "before": None,
                    "after": {
                        **request.args,
                        **({"items": request.items} if request.items else {}),
                    },
                    "checked": False,
                }
            ]
            later = request.method in ("Download", "Upload")  # done after the session
            result = {"ok": True, "result": {"status": 1, "planned": True} if later else True}
        else:  # DeleteObject
            answer = await transport(
                RpcRequest("GetParameterNames", path=request.object_name, next_level=True)
            )
            began = time.perf_counter()
            exists = bool(answer.get("ok"))
            changes = [
                {
                    "op": "delete",
                    "path": request.object_name,
                    "before": "exists" if exists else None,
                    "after": None,
                    "checked": exists,
                }
            ]
            result = {"ok": True, "result": True}
        self._record(
            target,
            "cwmp",
            {
                "line": line,
                "method": request.method,
                "request": request.to_json(),
                "changes": changes,
            },
        )
        self.overhead_s += time.perf_counter() - began
        return result

    # ---- USP ---------------------------------------------------------------------------

    async def _usp(
        self, target: str, kind: str, msg: Any, transport: Transport, line: int | None
    ) -> Any:
        from oktoscripts.usp import messages

        request = getattr(msg.body.request, kind)
        if kind == "set":
            paths = [u.obj_path + s.param for u in request.update_objs for s in u.param_settings]
            read = await transport(messages.request("get", param_paths=paths))
            began = time.perf_counter()
            read = read if isinstance(read, dict) and "error_code" not in read else None
            changes, result = [], {"planned": True}
            for update in request.update_objs:
                for setting in update.param_settings:
                    path = update.obj_path + setting.param
                    resolved = [p for p in (read or {}) if _same_param(p, path)] or [path]
                    for concrete in resolved:
                        before, checked = self._before(target, concrete, read)
                        changes.append(
                            {
                                "op": "set",
                                "path": concrete,
                                "before": before,
                                "after": setting.value,
                                "checked": checked,
                            }
                        )
                        result[concrete] = setting.value
        elif kind == "add":
            changes, result = [], []
            for create in request.create_objs:
                found = await transport(
                    messages.request(
                        "get_instances", obj_paths=[create.obj_path], first_level_only=True
                    )
                )
                began = time.perf_counter()
                existing = _instance_numbers(
                    create.obj_path,
                    [i.get("instantiated_obj_path", "") for i in found]
                    if isinstance(found, list)
                    else [],
                )
                number = self._instance(target, create.obj_path, existing)
                path = f"{create.obj_path}{number}."
                changes.append(
                    {
                        "op": "add",
                        "path": create.obj_path,
                        "before": None,
                        "after": path,
                        "checked": False,
                        "instance": number,
                        "values": {s.param: s.value for s in create.param_settings},
                    }
                )
                result.append(
                    {
                        "instantiated_path": path,
                        "unique_keys": {},
                        "requested_path": create.obj_path,
                    }
                )
        elif kind == "delete":
            began = time.perf_counter()
            changes = [
                {"op": "delete", "path": p, "before": "exists", "after": None, "checked": False}
                for p in request.obj_paths
            ]
            result = list(request.obj_paths)
        elif kind != "operate":  # anything else that is not a read
            began = time.perf_counter()
            changes = [
                {
                    "op": kind or "unknown",
                    "path": "",
                    "before": None,
                    "after": None,
                    "checked": False,
                }
            ]
            result = {"planned": True}
        else:  # operate
            began = time.perf_counter()
            changes = [
                {
                    "op": "operate",
                    "path": request.command,
                    "before": None,
                    "after": dict(request.input_args),
                    "checked": False,
                }
            ]
            result = {"planned": True}
        self._record(
            target,
            "usp",
            {
                "line": line,
                "method": kind,
                "changes": changes,
                "request": json_format.MessageToDict(msg, preserving_proto_field_name=True),
            },
        )
        self.overhead_s += time.perf_counter() - began
        return result


def _instance_numbers(table: str, names: list[str]) -> list[int]:
    out = []
    for name in names:
        rest = name[len(table) :] if name.startswith(table) else ""
        head = rest.split(".", 1)[0]
        if head.isdigit():
            out.append(int(head))
    return out


def _same_param(concrete: str, requested: str) -> bool:
    """Whether ``concrete`` is what ``requested`` (perhaps with ``*`` or an
    instance search) names: the same parameter name at the same depth."""
    a, b = concrete.split("."), requested.split(".")
    return (
        len(a) == len(b)
        and a[-1] == b[-1]
        and all(x == y or y == "*" or y.startswith("[") for x, y in zip(a, b, strict=True))
    )
