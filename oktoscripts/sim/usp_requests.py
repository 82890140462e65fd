"""How the simulated USP agent answers requests, against its TR-181 model.

``handle_request`` turns one request Msg into the response (or Error) Msg
and the side effects the agent must carry out afterwards (a reboot, an
asynchronous command finishing, value changes for ValueChange
notifications).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oktoscripts.sim import tr181
from oktoscripts.sim.tr181 import DataModel, PathError
from oktoscripts.usp import messages
from oktoscripts.usp.messages import Msg
from oktoscripts.usp.proto import usp_msg_pb2

SupportedDM = usp_msg_pb2.GetSupportedDMResp
AGENT_PROTOCOL_VERSIONS = "1.0,1.1,1.2,1.3"
DATA_MODEL_URI = "urn:broadband-forum-org:tr-181-2-16-0-usp"
# Parameter types (as ParamSpec names them) in GetSupportedDMResp.
PARAM_TYPES = {
    "base64": SupportedDM.PARAM_BASE_64,
    "boolean": SupportedDM.PARAM_BOOLEAN,
    "dateTime": SupportedDM.PARAM_DATE_TIME,
    "decimal": SupportedDM.PARAM_DECIMAL,
    "hexBinary": SupportedDM.PARAM_HEX_BINARY,
    "int": SupportedDM.PARAM_INT,
    "long": SupportedDM.PARAM_LONG,
    "string": SupportedDM.PARAM_STRING,
    "unsignedInt": SupportedDM.PARAM_UNSIGNED_INT,
    "unsignedLong": SupportedDM.PARAM_UNSIGNED_LONG,
}


@dataclass
class Effects:
    """What the agent does after answering."""

    reboot_command_key: str | None = None
    async_commands: list[tuple[str, str, str, dict]] = field(default_factory=list)
    # (request object path, command path, command_key, input args)
    changed: list[str] = field(default_factory=list)  # parameter paths whose value changed


class RequestFailed(Exception):
    """The whole request fails: answered with a USP Error message."""

    def __init__(self, code: int, message: str, param_errs: list[tuple[str, int, str]] = ()):
        super().__init__(message)
        self.code, self.message, self.param_errs = code, message, list(param_errs)


def handle_request(dm: DataModel, msg: Msg) -> tuple[Msg | None, Effects]:
    """The answer to ``msg`` (None when none is due) and the effects to carry out."""
    effects = Effects()
    kind = messages.request_kind(msg)
    handler = _HANDLERS.get(kind or "")
    if handler is None:
        return messages.error_to(
            msg, 7001 if kind else 7000, f"request {kind} not supported by this agent"
        ), effects
    try:
        return handler(dm, msg, effects), effects
    except RequestFailed as exc:
        return messages.error_to(msg, exc.code, exc.message, exc.param_errs), effects
    except PathError as exc:
        return messages.error_to(msg, exc.code, exc.message), effects


# ---- Get ---------------------------------------------------------------------------


def _depth_below(base: str, obj: str) -> int:
    extra = obj[len(base) :].split(".")[:-1]
    return sum(1 for segment in extra if not segment.isdigit())


def _get(dm: DataModel, msg: Msg, effects: Effects) -> Msg:
    get = msg.body.request.get
    response, body = messages.response_to(msg, "get")
    for path in get.param_paths:
        result = body.req_path_results.add(requested_path=path)
        try:
            resolved = dm.resolve(path)
        except PathError as exc:
            result.err_code, result.err_msg = exc.code, exc.message
            continue
        by_object: dict[str, dict[str, str]] = {}
        for param in resolved.params:
            obj, name = param.rsplit(".", 1)
            by_object.setdefault(obj + ".", {})[name] = dm.get_value(param)
        for base in resolved.objects:
            for obj in [p for p in dm.objects if p.startswith(base)]:
                if get.max_depth and _depth_below(base, obj) >= get.max_depth:
                    continue
                by_object.setdefault(obj, {}).update(dm.object_params(obj))
        for obj, params in by_object.items():
            result.resolved_path_results.add(resolved_path=obj, result_params=params)
    return response


# ---- Set ---------------------------------------------------------------------------


def _check_setting(dm: DataModel, obj: str, param: str, value: str) -> tuple[int, str] | None:
    spec = dm.spec(obj)
    pspec = spec.params.get(param) if spec else None
    if pspec is None:
        return tr181.ERR_UNSUPPORTED_PARAM, f"{obj}{param} is not a parameter"
    if not pspec.writable:
        return tr181.ERR_NOT_WRITABLE, f"{obj}{param} is read-only"
    if not tr181.valid_value(pspec, value):
        return tr181.ERR_INVALID_VALUE, f"{value!r} is not a valid {pspec.type} for {obj}{param}"
    return None


def _set(dm: DataModel, msg: Msg, effects: Effects) -> Msg:
    req = msg.body.request.set
    response, body = messages.response_to(msg, "set")
    planned: list[tuple[str, dict[str, str]]] = []  # (object, {param: value}) to apply
    whole_failures: list[tuple[str, int, str]] = []
    for update in req.update_objs:
        result = body.updated_obj_results.add(requested_path=update.obj_path)
        try:
            objects = dm.resolve(update.obj_path).objects
        except PathError as exc:
            result.oper_status.oper_failure.err_code = exc.code
            result.oper_status.oper_failure.err_msg = exc.message
            whole_failures.append((update.obj_path, exc.code, exc.message))
            continue
        failure, successes = None, []
        for obj in objects:
            changes, param_errs, required_errs = {}, [], []
            for setting in update.param_settings:
                problem = _check_setting(dm, obj, setting.param, setting.value)
                if problem is None:
                    pspec = dm.param_spec(obj + setting.param)
                    changes[setting.param] = tr181.normalize_value(pspec, setting.value)
                elif setting.required:
                    required_errs.append((setting.param, *problem))
                else:
                    param_errs.append((setting.param, *problem))
            if required_errs:
                failure = failure or result.oper_status.oper_failure
                inst = failure.updated_inst_failures.add(affected_path=obj)
                for param, code, text in required_errs:
                    inst.param_errs.add(param=param, err_code=code, err_msg=text)
                    whole_failures.append((obj + param, code, text))
            else:
                successes.append((obj, changes, param_errs))
        if failure is not None:
            failure.err_code = failure.updated_inst_failures[0].param_errs[0].err_code
            failure.err_msg = "required parameter failed"
            continue
        success = result.oper_status.oper_success
        success.SetInParent()
        for obj, changes, param_errs in successes:
            inst = success.updated_inst_results.add(affected_path=obj, updated_params=changes)
            for param, code, text in param_errs:
                inst.param_errs.add(param=param, err_code=code, err_msg=text)
            planned.append((obj, changes))
    if whole_failures and not req.allow_partial:
        raise RequestFailed(tr181.ERR_INVALID_ARGUMENTS, "Set failed", whole_failures)
    for obj, changes in planned:
        for param, value in changes.items():
            if dm.values.get(obj + param) != value:
                dm.values[obj + param] = value
                effects.changed.append(obj + param)
    return response


# ---- Add / Delete ------------------------------------------------------------------------


def _tables(dm: DataModel, path: str) -> list[str]:
    if not path.endswith("."):
        raise PathError(tr181.ERR_INVALID_PATH, f"{path} is not an object path")
    parent, name = path[:-1].rsplit(".", 1)
    parents = dm.resolve(parent + ".").objects if "." in parent else ["Device."]
    tables = [p + name + "." for p in parents]
    for table in tables:
        if not dm.is_table(table):
            raise PathError(tr181.ERR_NOT_A_TABLE, f"{table} is not a multi-instance object")
    return tables


def _add(dm: DataModel, msg: Msg, effects: Effects) -> Msg:
    req = msg.body.request.add
    response, body = messages.response_to(msg, "add")
    failures = []
    for create in req.create_objs:
        result = body.created_obj_results.add(requested_path=create.obj_path)
        try:
            tables = _tables(dm, create.obj_path)
            for table in tables:
                if not dm.spec(table + "1.").creatable:
                    raise PathError(tr181.ERR_NOT_CREATABLE, f"{table} cannot be added to")
                values, param_errs = {}, []
                for setting in create.param_settings:
                    problem = _check_setting(dm, table + "1.", setting.param, setting.value)
                    if problem and setting.required:
                        raise PathError(problem[0], problem[1].replace(f"{table}1.", table))
                    if problem:
                        param_errs.append((setting.param, *problem))
                    else:
                        pspec = dm.param_spec(table + "1." + setting.param)
                        values[setting.param] = tr181.normalize_value(pspec, setting.value)
                inst = dm.add_instance(table, values)
                success = result.oper_status.oper_success
                success.instantiated_path = inst
                success.unique_keys.update(dm.unique_keys(inst))
                for param, code, text in param_errs:
                    success.param_errs.add(param=param, err_code=code, err_msg=text)
        except PathError as exc:
            result.oper_status.oper_failure.err_code = exc.code
            result.oper_status.oper_failure.err_msg = exc.message
            failures.append((create.obj_path, exc.code, exc.message))
    if failures and not req.allow_partial:
        raise RequestFailed(failures[0][1], "Add failed", failures)
    return response


def _delete(dm: DataModel, msg: Msg, effects: Effects) -> Msg:
    req = msg.body.request.delete
    response, body = messages.response_to(msg, "delete")
    failures = []
    for path in req.obj_paths:
        result = body.deleted_obj_results.add(requested_path=path)
        try:
            objects = dm.resolve(path).objects
            if not path.endswith(".") or any(
                not o[:-1].rsplit(".", 1)[1].isdigit() for o in objects
            ):
                raise PathError(tr181.ERR_INVALID_PATH, f"{path} does not name object instances")
        except PathError as exc:
            result.oper_status.oper_failure.err_code = exc.code
            result.oper_status.oper_failure.err_msg = exc.message
            failures.append((path, exc.code, exc.message))
            continue
        success = result.oper_status.oper_success
        success.SetInParent()
        for obj in objects:
            gone = dm.delete_object(obj)
            success.affected_paths.extend(p for p in gone if p[:-1].rsplit(".", 1)[1].isdigit())
    if failures and not req.allow_partial:
        raise RequestFailed(failures[0][1], "Delete failed", failures)
    return response


# ---- Operate -----------------------------------------------------------------------------


def _operate(dm: DataModel, msg: Msg, effects: Effects) -> Msg | None:
    req = msg.body.request.operate
    commands = dm.resolve(req.command).commands
    if not commands:
        raise RequestFailed(tr181.ERR_INVALID_PATH, f"{req.command} is not a command")
    response, body = messages.response_to(msg, "operate")
    for command in commands:
        obj, name = command.rsplit(".", 1)
        spec = dm.spec(obj + ".").commands[name]
        result = body.operation_results.add(executed_command=command)
        missing = [arg for arg in spec.inputs[:1] if arg not in req.input_args]
        if missing:
            result.cmd_failure.err_code = 7027
            result.cmd_failure.err_msg = f"missing input argument {missing[0]}"
        elif spec.asynchronous:
            request_obj = dm.add_instance(
                "Device.LocalAgent.Request.",
                {
                    "Originator": "controller",
                    "Command": command,
                    "CommandKey": req.command_key,
                    "Status": "Active",
                },
            )
            result.req_obj_path = request_obj
            effects.async_commands.append(
                (request_obj, command, req.command_key, dict(req.input_args))
            )
        else:
            result.req_output_args.SetInParent()
            if name == "Reboot()":
                effects.reboot_command_key = req.command_key
    return response if req.send_resp else None


def async_command_output(command: str, inputs: dict) -> dict[str, str]:
    """The output arguments an asynchronous command reports when it completes."""
    if command.endswith("IPPing()"):
        count = int(inputs.get("NumberOfRepetitions", "3") or 3)
        return {
            "Status": "Complete",
            "SuccessCount": str(count),
            "FailureCount": "0",
            "AverageResponseTime": "7",
        }
    return {"Status": "Complete", "Results": "all self tests passed"}


# ---- GetInstances / GetSupportedDM / GetSupportedProtocol ---------------------------------


def _is_instance(path: str) -> bool:
    parent_and_last = path[:-1].rsplit(".", 1)  # "Device." has no parent
    return len(parent_and_last) == 2 and parent_and_last[1].isdigit()


def _get_instances(dm: DataModel, msg: Msg, effects: Effects) -> Msg:
    req = msg.body.request.get_instances
    response, body = messages.response_to(msg, "get_instances")
    for path in req.obj_paths:
        result = body.req_path_results.add(requested_path=path)
        try:
            bases = dm.resolve(path).objects
        except PathError as exc:
            result.err_code, result.err_msg = exc.code, exc.message
            continue
        found: dict[str, None] = {b: None for b in bases if _is_instance(b)}
        if not req.first_level_only:
            for base in bases:
                found.update(
                    {p: None for p in dm.objects if p.startswith(base) and _is_instance(p)}
                )
        for inst in found:
            result.curr_insts.add(instantiated_obj_path=inst, unique_keys=dm.unique_keys(inst))
    return response


def _supported_object(
    dm: DataModel,
    path: str,
    req: usp_msg_pb2.GetSupportedDM,
    out: SupportedDM.SupportedObjectResult,
) -> None:
    spec = dm.supported[path]
    out.supported_obj_path = path
    out.is_multi_instance = spec.multi
    out.access = SupportedDM.OBJ_ADD_DELETE if spec.creatable else SupportedDM.OBJ_READ_ONLY
    if req.return_params:
        for name, p in spec.params.items():
            access = (
                SupportedDM.PARAM_WRITE_ONLY
                if p.write_only
                else SupportedDM.PARAM_READ_WRITE
                if p.writable
                else SupportedDM.PARAM_READ_ONLY
            )
            out.supported_params.add(
                param_name=name,
                access=access,
                value_type=PARAM_TYPES.get(p.type, SupportedDM.PARAM_UNKNOWN),
                value_change=SupportedDM.VALUE_CHANGE_ALLOWED,
            )
    if req.return_commands:
        for name, c in spec.commands.items():
            out.supported_commands.add(
                command_name=name,
                input_arg_names=c.inputs,
                output_arg_names=c.outputs,
                command_type=SupportedDM.CMD_ASYNC if c.asynchronous else SupportedDM.CMD_SYNC,
            )
    if req.return_events:
        for name, args in spec.events.items():
            out.supported_events.add(event_name=name, arg_names=args)


def _get_supported_dm(dm: DataModel, msg: Msg, effects: Effects) -> Msg:
    req = msg.body.request.get_supported_dm
    response, body = messages.response_to(msg, "get_supported_dm")
    for path in req.obj_paths:
        result = body.req_obj_results.add(req_obj_path=path)
        base = tr181.supported_path(path)
        if base not in dm.supported:
            result.err_code = tr181.ERR_INVALID_PATH
            result.err_msg = f"{path} is not in the supported data model"
            continue
        result.data_model_inst_uri = DATA_MODEL_URI
        for candidate in dm.supported:
            if not candidate.startswith(base):
                continue
            rest = candidate[len(base) :].replace("{i}.", "")
            if req.first_level_only and rest.count(".") > 1:
                continue
            _supported_object(dm, candidate, req, result.supported_objs.add())
    return response


def _get_supported_protocol(dm: DataModel, msg: Msg, effects: Effects) -> Msg:
    response, body = messages.response_to(msg, "get_supported_protocol")
    body.agent_supported_protocol_versions = AGENT_PROTOCOL_VERSIONS
    return response


_HANDLERS = {
    "get": _get,
    "set": _set,
    "add": _add,
    "delete": _delete,
    "operate": _operate,
    "get_instances": _get_instances,
    "get_supported_dm": _get_supported_dm,
    "get_supported_protocol": _get_supported_protocol,
}
