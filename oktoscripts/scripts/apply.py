"""Applying a plan: a second run that makes exactly the planned writes.

The apply run is an ordinary run (queued, limited, audited, its exact code
kept) whose code this module writes: the plan's calls as data, and a short
Lua program that, device by device,

1. reads every value the plan read from the device ("before") in one request
   and refuses the device, changing nothing on it, when one differs now;
2. sends the planned calls in their order, as they were planned (the same
   RPC or USP Msg), and stops the device at the first that fails, or at an
   AddObject / Add whose new instance is not the one planned (the writes
   planned after it would go to another object).

Its result: ``{applied = {serial = calls}, refused = {serial = why},
failed = {serial = why}}``.
"""

from __future__ import annotations

import json
from typing import Any

from oktoscripts.cwmp.soap import ALL_MESSAGE_TYPES, RpcRequest, _request_body

APPLIER = r"""
local function failed(r)
  if type(r) ~= "table" then return nil end
  if r.error_code then return r.error_code .. " " .. tostring(r.error_message) end
  return nil
end

local report = {applied = {}, refused = {}, failed = {}}
for _, device in ipairs(PLAN) do
  local serial, paths, wanted = device.serial, {}, {}
  for _, check in ipairs(device.checks) do
    paths[#paths + 1] = check.path
    wanted[check.path] = check.before
  end
  local refusal
  if #paths > 0 then
    local now
    if device.protocol == "cwmp" then
      now = send_cwmp_message(serial, device.read, 0)
    else
      now = send_usp_message(serial, device.read)
    end
    refusal = failed(now) and ("cannot read the planned values: " .. failed(now))
    if not refusal then
      for _, path in ipairs(paths) do
        if now[path] ~= wanted[path] then
          refusal = path .. " is " .. string.format("%q", tostring(now[path]))
            .. " now, " .. string.format("%q", wanted[path]) .. " when planned"
          break
        end
      end
    end
  end
  if refusal then
    report.refused[serial] = refusal
    print("refused " .. serial .. ": " .. refusal)
  else
    local done = 0
    for _, call in ipairs(device.calls) do
      local r
      if device.protocol == "cwmp" then
        r = send_cwmp_message(serial, call.payload, call.message_type)
      else
        r = send_usp_message(serial, call.payload)
      end
      local why = failed(r)
      if not why and call.instance then
        local got = device.protocol == "cwmp" and r.instance_number
          or (r[1] and r[1].instantiated_path)
        if tostring(got) ~= tostring(call.instance) then
          why = "the new instance is " .. tostring(got) .. ", " .. tostring(call.instance)
            .. " when planned"
        end
      end
      if why then
        report.failed[serial] = "call " .. (done + 1) .. " (line " .. tostring(call.line)
          .. " of the plan): " .. why
        print("failed " .. serial .. ": " .. report.failed[serial])
        break
      end
      done = done + 1
    end
    report.applied[serial] = done
    print("applied " .. done .. " planned call(s) to " .. serial)
  end
end
return report
"""


def applier_code(plan: dict[str, Any], script_name: str, run_id: str) -> str:
    """The Lua code of the run applying ``plan`` (a plan run's ``metrics.plan``)."""
    devices = [_device(serial, entry) for serial, entry in plan.get("devices", {}).items()]
    data = json.dumps(devices, sort_keys=True)
    level = 0
    while f"]{'=' * level}]" in data:
        level += 1
    quote = "=" * level
    # A space before the closing bracket: data ending in "]" must not close it early.
    return (
        f"-- applies the plan of run {run_id} ({script_name}): the planned writes,\n"
        "-- where the devices still hold the values the plan read\n"
        f"local PLAN = json_decode([{quote}[{data} ]{quote}])\n{APPLIER}"
    )


def _device(serial: str, entry: dict[str, Any]) -> dict[str, Any]:
    protocol = entry["protocol"]
    checks: dict[str, Any] = {}
    calls = []
    for call in entry["calls"]:
        for change in call["changes"]:
            if change.get("checked") and change["path"] not in checks:
                checks[change["path"]] = change["before"]
        instance = next((c.get("instance") for c in call["changes"] if c["op"] == "add"), None)
        if protocol == "usp" and instance is not None:
            instance = next(c["after"] for c in call["changes"] if c["op"] == "add")
        calls.append(
            {**_payload(protocol, call["request"]), "line": call.get("line"), "instance": instance}
        )
    return {
        "serial": serial,
        "protocol": protocol,
        "calls": calls,
        "checks": [{"path": p, "before": b} for p, b in checks.items()],
        "read": _read_payload(protocol, list(checks)),
    }


def _read_payload(protocol: str, paths: list[str]) -> Any:
    """The request reading ``paths`` now (built here: escaped as the protocol needs)."""
    if protocol == "cwmp":
        return _request_body(RpcRequest("GetParameterValues", names=paths))
    return {
        "header": {"msg_id": "apply-read", "msg_type": "GET"},
        "body": {"request": {"get": {"param_paths": paths}}},
    }


def _payload(protocol: str, request: dict[str, Any]) -> dict[str, Any]:
    if protocol == "cwmp":
        rpc = RpcRequest.from_json(request)
        types = {method: number for number, method in ALL_MESSAGE_TYPES.items()}
        return {"payload": _request_body(rpc), "message_type": types[rpc.method]}
    return {"payload": request}


def summary(plan: dict[str, Any]) -> dict[str, int]:
    """How many devices, calls and changes a plan holds."""
    devices = plan.get("devices", {})
    calls = sum(len(d["calls"]) for d in devices.values())
    changes = sum(len(c["changes"]) for d in devices.values() for c in d["calls"])
    return {"devices": len(devices), "calls": calls, "changes": changes}


def start_apply(plan_run: Any, user: Any, started_by: str) -> Any:
    """Start the run applying the plan of ``plan_run`` (a finished plan-mode Run),
    acting for ``user``. ValueError says why it cannot be applied."""
    from oktoscripts.runs.models import Run
    from oktoscripts.scripts.start import Origin, Source, start_run

    if plan_run.mode != Run.Mode.PLAN:
        raise ValueError("this run was not run in plan mode: there is no plan to apply")
    if plan_run.status != Run.Status.SUCCEEDED:
        raise ValueError(
            f"only the plan of a succeeded run is applied (this one {plan_run.status})"
        )
    plan = (plan_run.metrics or {}).get("plan") or {}
    if plan.get("left_out"):
        raise ValueError(
            f"the plan is incomplete ({plan['left_out']} calls left out): "
            "apply it by running the script"
        )
    if not plan.get("devices"):
        raise ValueError("the plan changes nothing")
    code = applier_code(plan, plan_run.script_name, str(plan_run.pk))
    source = Source.file(f"{plan_run.script_name} (apply plan)", code)
    origin = Origin(
        started_by, trigger=f"plan of run {plan_run.pk}", mode="apply", plan_of=str(plan_run.pk)
    )
    return start_run(source, user=user, args={}, origin=origin)


def merged(plans: list[dict[str, Any]]) -> dict[str, Any]:
    """One plan of several (a bulk run's items: each plans its own device)."""
    devices: dict[str, Any] = {}
    left_out = 0
    for plan in plans:
        left_out += plan.get("left_out") or 0
        for serial, entry in (plan.get("devices") or {}).items():
            devices.setdefault(serial, {"protocol": entry["protocol"], "calls": []})
            devices[serial]["calls"].extend(entry["calls"])
    return {"devices": devices, "left_out": left_out}


def start_bulk_apply(bulk: Any, user: Any, started_by: str) -> Any:
    """Start one run applying the plans of a finished bulk run in plan mode (its
    items' plans together). ValueError says why it cannot be applied."""
    from oktoscripts.runs.models import Run
    from oktoscripts.scripts.start import Origin, Source, start_run

    if bulk.mode != "plan":
        raise ValueError("this bulk run was not run in plan mode: there is no plan to apply")
    if bulk.status != "finished":
        raise ValueError("the bulk plan is not finished yet")
    run_ids = [i.run_id for i in bulk.items.all() if i.run_id]
    runs = list(Run.objects.filter(pk__in=run_ids, mode=Run.Mode.PLAN))
    if any(r.status != Run.Status.SUCCEEDED for r in runs) or len(runs) != bulk.items.count():
        raise ValueError(
            "only a bulk plan whose every device's plan succeeded is applied "
            "(retry the failed ones first)"
        )
    plan = merged([(r.metrics or {}).get("plan") or {} for r in runs])
    if plan["left_out"]:
        raise ValueError("the plan is incomplete: apply it by running the script")
    if not plan["devices"]:
        raise ValueError("the plan changes nothing")
    code = applier_code(plan, bulk.script.name, f"of bulk run #{bulk.pk}")
    source = Source.file(f"{bulk.script.name} (apply bulk plan #{bulk.pk})", code)
    origin = Origin(started_by, trigger=f"plan of bulk run #{bulk.pk}", mode="apply")
    return start_run(source, user=user, args={}, origin=origin)
