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
applied by a second run (``oktoscripts/runs/apply.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format

Transport = Callable[[Any], Awaitable[Any]]

CWMP_CHANGES = ("SetParameterValues", "AddObject", "DeleteObject")
USP_CHANGES = ("set", "add", "delete", "operate")
# Calls kept in one plan: a script looping over writes must not grow a run's
# metrics without bound (what is left out is counted).
MAX_PLANNED_CALLS = 10_000


def for_mode(mode: str) -> Planner | None:
    """The gate of a run of this mode (None: calls go straight out)."""
    return Planner() if mode == "plan" else None


class Planner:
    """The gate of a run in plan mode."""

    def __init__(self) -> None:
        self.devices: dict[str, dict[str, Any]] = {}  # target -> {"protocol", "calls"}
        self.left_out = 0
        self.overhead_s = 0.0  # time spent planning beyond the reads it sends
        self._planned_values: dict[tuple[str, str], str] = {}  # what earlier changes set
        self._next_instance: dict[tuple[str, str], int] = {}

    async def call(self, ctx: Any, protocol: str, target: str, request: Any,
                   transport: Transport) -> Any:
        line = ctx.call_line
        if protocol == "cwmp" and request.method in CWMP_CHANGES:
            return await self._cwmp(target, request, transport, line)
        if protocol == "usp":
            from oktoscripts.usp import messages

            kind = messages.request_kind(request)
            if kind in USP_CHANGES:
                return await self._usp(target, kind, request, transport, line)
        return await transport(request)

    def metrics(self) -> dict[str, Any]:
        return {"plan": {"devices": self.devices, "left_out": self.left_out,
                         "overhead_s": round(self.overhead_s, 6)}}

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

    async def _cwmp(self, target: str, request: Any, transport: Transport,
                    line: int | None) -> dict:
        from oktoscripts.cwmp.soap import RpcRequest

        if request.method == "SetParameterValues":
            names = [name for name, _, _ in request.values]
            answer = await transport(RpcRequest("GetParameterValues", names=names))
            began = time.perf_counter()
            read = answer["result"] if answer.get("ok") else None
            changes = []
            for name, value, xsd in request.values:
                before, checked = self._before(target, name, read)
                changes.append({"op": "set", "path": name, "before": before, "after": value,
                                "type": xsd, "checked": checked})
            result: dict = {"ok": True, "result": True}
        elif request.method == "AddObject":
            answer = await transport(RpcRequest("GetParameterNames", path=request.object_name,
                                                next_level=True))
            began = time.perf_counter()
            existing = _instance_numbers(request.object_name, answer.get("result") or []) \
                if answer.get("ok") else []
            number = self._instance(target, request.object_name, existing)
            changes = [{"op": "add", "path": request.object_name, "before": None,
                        "after": f"{request.object_name}{number}.", "checked": False,
                        "instance": number}]
            result = {"ok": True, "result": {"instance_number": number, "status": 0,
                                             "planned": True}}
        else:  # DeleteObject
            answer = await transport(RpcRequest("GetParameterNames", path=request.object_name,
                                                next_level=True))
            began = time.perf_counter()
            exists = bool(answer.get("ok"))
            changes = [{"op": "delete", "path": request.object_name,
                        "before": "exists" if exists else None, "after": None,
                        "checked": exists}]
            result = {"ok": True, "result": True}
        self._record(target, "cwmp", {"line": line, "method": request.method,
                                      "request": request.to_json(), "changes": changes})
        self.overhead_s += time.perf_counter() - began
        return result

    # ---- USP ---------------------------------------------------------------------------

    async def _usp(self, target: str, kind: str, msg: Any, transport: Transport,
                   line: int | None) -> Any:
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
                        changes.append({"op": "set", "path": concrete, "before": before,
                                        "after": setting.value, "checked": checked})
                        result[concrete] = setting.value
        elif kind == "add":
            changes, result = [], []
            for create in request.create_objs:
                found = await transport(messages.request(
                    "get_instances", obj_paths=[create.obj_path], first_level_only=True))
                began = time.perf_counter()
                existing = _instance_numbers(
                    create.obj_path, [i.get("instantiated_obj_path", "") for i in found]
                    if isinstance(found, list) else [])
                number = self._instance(target, create.obj_path, existing)
                path = f"{create.obj_path}{number}."
                changes.append({"op": "add", "path": create.obj_path, "before": None,
                                "after": path, "checked": False, "instance": number,
                                "values": {s.param: s.value for s in create.param_settings}})
                result.append({"instantiated_path": path, "unique_keys": {},
                               "requested_path": create.obj_path})
        elif kind == "delete":
            began = time.perf_counter()
            changes = [{"op": "delete", "path": p, "before": "exists", "after": None,
                        "checked": False} for p in request.obj_paths]
            result = list(request.obj_paths)
        else:  # operate
            began = time.perf_counter()
            changes = [{"op": "operate", "path": request.command, "before": None,
                        "after": dict(request.input_args), "checked": False}]
            result = {"planned": True}
        self._record(target, "usp", {
            "line": line, "method": kind, "changes": changes,
            "request": json_format.MessageToDict(msg, preserving_proto_field_name=True)})
        self.overhead_s += time.perf_counter() - began
        return result


def _instance_numbers(table: str, names: list[str]) -> list[int]:
    out = []
    for name in names:
        rest = name[len(table):] if name.startswith(table) else ""
        head = rest.split(".", 1)[0]
        if head.isdigit():
            out.append(int(head))
    return out


def _same_param(concrete: str, requested: str) -> bool:
    """Whether ``concrete`` is what ``requested`` (perhaps with ``*`` or an
    instance search) names: the same parameter name at the same depth."""
    a, b = concrete.split("."), requested.split(".")
    return len(a) == len(b) and a[-1] == b[-1] and all(
        x == y or y == "*" or y.startswith("[") for x, y in zip(a, b, strict=True))
