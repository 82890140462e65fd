"""What ``send_usp_message`` returns: USP responses turned into the shapes
of docs/lua-api.md, and USP errors and platform failures into error tables.

Success shapes, by request:
- get: ``{[full parameter path] = "value"}`` over every resolved path.
- set: ``{[full parameter path] = "new value"}`` for every updated parameter.
- add: ``{{instantiated_path = "...", unique_keys = {...}, requested_path = "..."}, ...}``.
- delete: ``{"Device.X.1.", ...}`` every affected path.
- operate: the output arguments of the command; for an asynchronous command
  the agent only says where its Request object is: ``{req_obj_path = "..."}``;
  a search path that ran several commands gives ``{[executed_command] = outputs}``.
- get_instances: ``{{instantiated_obj_path = "...", unique_keys = {...}}, ...}``.
- get_supported_dm: ``{[object path] = {access, is_multi_instance, params =
  {[name] = {access, value_type, value_change}}, commands = {[name] =
  {input_args, output_args, command_type}}, events = {[name] = {args}}}}``
  (enum values by name, e.g. ``"OBJ_READ_ONLY"``).
- get_supported_protocol: ``{agent_supported_protocol_versions = "1.0,1.3"}``.

A path that failed inside an otherwise successful response (an err_code in a
requested path result, an oper_failure) turns the whole result into the error
table: error_code of the first failure, and every failed path in param_errs.
"""

from __future__ import annotations

from typing import Any

from oktoscripts.usp.messages import Msg, response_kind
from oktoscripts.usp.proto import usp_msg_pb2

SupportedDM = usp_msg_pb2.GetSupportedDMResp


def error_table(code: str | int, message: str, **extra: Any) -> dict:
    """The error value of docs/lua-api.md: error_code (string) and error_message."""
    return {"error_code": str(code), "error_message": message, **extra}


def is_error(value: Any) -> bool:
    return isinstance(value, dict) and "error_code" in value and "error_message" in value


def _param_err(path: str, code: int, message: str) -> dict:
    return {"param_path": path, "err_code": str(code), "err_msg": message}


def _failures_table(failures: list[dict]) -> dict:
    first = failures[0]
    return error_table(
        first["err_code"], first["err_msg"] or "USP request failed", param_errs=failures
    )


def from_usp_error(err: usp_msg_pb2.Error) -> dict:
    return error_table(
        err.err_code,
        err.err_msg or f"USP error {err.err_code}",
        param_errs=[_param_err(p.param_path, p.err_code, p.err_msg) for p in err.param_errs],
    )


def _get(resp: usp_msg_pb2.GetResp) -> Any:
    values: dict[str, str] = {}
    failures = []
    for requested in resp.req_path_results:
        if requested.err_code:
            failures.append(
                _param_err(requested.requested_path, requested.err_code, requested.err_msg)
            )
            continue
        for resolved in requested.resolved_path_results:
            for name, value in resolved.result_params.items():
                values[resolved.resolved_path + name] = value
    return _failures_table(failures) if failures else values


def _set(resp: usp_msg_pb2.SetResp) -> Any:
    values: dict[str, str] = {}
    failures = []
    for result in resp.updated_obj_results:
        status = result.oper_status
        if status.WhichOneof("oper_status") == "oper_failure":
            failure = status.oper_failure
            inst_errs = [
                _param_err(inst.affected_path + p.param, p.err_code, p.err_msg)
                for inst in failure.updated_inst_failures
                for p in inst.param_errs
            ]
            failures.extend(
                inst_errs or [_param_err(result.requested_path, failure.err_code, failure.err_msg)]
            )
            continue
        for inst in status.oper_success.updated_inst_results:
            for name, value in inst.updated_params.items():
                values[inst.affected_path + name] = value
    return _failures_table(failures) if failures else values


def _add(resp: usp_msg_pb2.AddResp) -> Any:
    created, failures = [], []
    for result in resp.created_obj_results:
        status = result.oper_status
        if status.WhichOneof("oper_status") == "oper_failure":
            failures.append(
                _param_err(
                    result.requested_path, status.oper_failure.err_code, status.oper_failure.err_msg
                )
            )
            continue
        success = status.oper_success
        created.append(
            {
                "instantiated_path": success.instantiated_path,
                "unique_keys": dict(success.unique_keys),
                "requested_path": result.requested_path,
            }
        )
    return _failures_table(failures) if failures else created


def _delete(resp: usp_msg_pb2.DeleteResp) -> Any:
    affected, failures = [], []
    for result in resp.deleted_obj_results:
        status = result.oper_status
        if status.WhichOneof("oper_status") == "oper_failure":
            failures.append(
                _param_err(
                    result.requested_path, status.oper_failure.err_code, status.oper_failure.err_msg
                )
            )
            continue
        affected.extend(status.oper_success.affected_paths)
    return _failures_table(failures) if failures else affected


def _operation_output(result: usp_msg_pb2.OperateResp.OperationResult) -> dict:
    kind = result.WhichOneof("operation_resp")
    if kind == "req_obj_path":
        return {"req_obj_path": result.req_obj_path}
    if kind == "req_output_args":
        return dict(result.req_output_args.output_args)
    return {}


def _operate(resp: usp_msg_pb2.OperateResp) -> Any:
    failures = [
        _param_err(r.executed_command, r.cmd_failure.err_code, r.cmd_failure.err_msg)
        for r in resp.operation_results
        if r.WhichOneof("operation_resp") == "cmd_failure"
    ]
    if failures:
        return _failures_table(failures)
    results = list(resp.operation_results)
    if len(results) == 1:
        return _operation_output(results[0])
    return {r.executed_command: _operation_output(r) for r in results}


def _get_instances(resp: usp_msg_pb2.GetInstancesResp) -> Any:
    instances, failures = [], []
    for requested in resp.req_path_results:
        if requested.err_code:
            failures.append(
                _param_err(requested.requested_path, requested.err_code, requested.err_msg)
            )
            continue
        for inst in requested.curr_insts:
            instances.append(
                {
                    "instantiated_obj_path": inst.instantiated_obj_path,
                    "unique_keys": dict(inst.unique_keys),
                }
            )
    return _failures_table(failures) if failures else instances


def _supported_object(obj: SupportedDM.SupportedObjectResult) -> dict:
    return {
        "access": SupportedDM.ObjAccessType.Name(obj.access),
        "is_multi_instance": obj.is_multi_instance,
        "params": {
            p.param_name: {
                "access": SupportedDM.ParamAccessType.Name(p.access),
                "value_type": SupportedDM.ParamValueType.Name(p.value_type),
                "value_change": SupportedDM.ValueChangeType.Name(p.value_change),
            }
            for p in obj.supported_params
        },
        "commands": {
            c.command_name: {
                "input_args": list(c.input_arg_names),
                "output_args": list(c.output_arg_names),
                "command_type": SupportedDM.CmdType.Name(c.command_type),
            }
            for c in obj.supported_commands
        },
        "events": {e.event_name: {"args": list(e.arg_names)} for e in obj.supported_events},
    }


def _get_supported_dm(resp: usp_msg_pb2.GetSupportedDMResp) -> Any:
    objects, failures = {}, []
    for requested in resp.req_obj_results:
        if requested.err_code:
            failures.append(
                _param_err(requested.req_obj_path, requested.err_code, requested.err_msg)
            )
            continue
        for obj in requested.supported_objs:
            objects[obj.supported_obj_path] = _supported_object(obj)
    return _failures_table(failures) if failures else objects


def _get_supported_protocol(resp: usp_msg_pb2.GetSupportedProtocolResp) -> Any:
    return {"agent_supported_protocol_versions": resp.agent_supported_protocol_versions}


_CONVERTERS = {
    "get_resp": _get,
    "set_resp": _set,
    "add_resp": _add,
    "delete_resp": _delete,
    "operate_resp": _operate,
    "get_instances_resp": _get_instances,
    "get_supported_dm_resp": _get_supported_dm,
    "get_supported_protocol_resp": _get_supported_protocol,
}


def script_result(request_kind: str, response: Msg) -> Any:
    """The value a script gets for the agent's ``response`` to its request."""
    kind = response_kind(response)
    if kind == "error":
        return from_usp_error(response.body.error)
    expected = f"{request_kind}_resp"
    if kind != expected or kind not in _CONVERTERS:
        return error_table("500", f"agent answered a {request_kind} request with {kind}")
    return _CONVERTERS[kind](getattr(response.body.response, kind))
