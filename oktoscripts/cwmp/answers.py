"""What a requester gets back for a CWMP RPC, already in the shapes of docs/lua-api.md.

``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {error_code,
error_message, [raw_response], [parameter_faults]}}``; JSON-ready.
"""

from __future__ import annotations

from oktoscripts.cwmp import day2
from oktoscripts.cwmp.soap import RESPONSE_OF, AddObjectResult, CwmpFault, TransferComplete


def error(code: str, message: str, **extra: object) -> dict:
    return {"ok": False, "error": {"error_code": code, "error_message": message, **extra}}


def from_fault(fault: CwmpFault, raw: bytes) -> dict:
    extra: dict = {"raw_response": raw.decode("utf-8", "replace")}
    if fault.parameter_faults:
        extra["parameter_faults"] = [
            {
                "parameter_name": p.parameter_name,
                "fault_code": p.fault_code,
                "fault_string": p.fault_string,
            }
            for p in fault.parameter_faults
        ]
    return error(fault.fault_code, fault.fault_string, **extra)


def from_response(method: str, rpc: str, result: object, raw: bytes, details: bool = False) -> dict:
    """The answer to ``method`` from the CPE's parsed response ``rpc``; with
    ``details``, also the xsd types of the values or the Writable flags of the names."""
    if isinstance(result, CwmpFault):
        return from_fault(result, raw)
    if rpc != RESPONSE_OF[method]:
        return error(
            "500",
            f"the CPE answered {method} with {rpc}",
            raw_response=raw.decode("utf-8", "replace"),
        )
    if method == "GetParameterValues":
        if details:
            return {"ok": True, "result": result, "types": getattr(result, "types", {})}
        return {"ok": True, "result": result}
    if method == "SetParameterValues":
        # Status 0: applied; 1: applied, takes effect after a reboot. Both succeed.
        return {"ok": True, "result": result in (0, 1)}
    if method == "AddObject":
        assert isinstance(result, AddObjectResult)
        return {
            "ok": True,
            "result": {"instance_number": result.instance_number, "status": result.status},
        }
    if method == "DeleteObject":
        return {"ok": True, "result": True}
    if method in day2.ARGS:
        return {"ok": True, "result": result}
    if details:  # GetParameterNames
        return {"ok": True, "result": list(result), "writable": getattr(result, "writable", {})}
    return {"ok": True, "result": list(result)}


def from_transfer_complete(tc: TransferComplete) -> dict:
    """The answer to a Download or Upload the CPE finished after its response."""
    if tc.fault_code:
        return error(
            str(tc.fault_code), tc.fault_string or "the transfer failed", command_key=tc.command_key
        )
    return {
        "ok": True,
        "result": {
            "status": 0,
            "transfer_complete": True,
            "command_key": tc.command_key,
            "start_time": tc.start_time,
            "complete_time": tc.complete_time,
        },
    }
