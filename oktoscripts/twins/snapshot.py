"""Reading a device's whole data model, for its twin.

CWMP: GetParameterNames of the whole tree (with each name's Writable flag),
then GetParameterValues of every parameter in batches (with each value's
xsd type). USP: GetSupportedDM of ``Device.`` (objects, parameter types and
access, commands, events), Get of ``Device.`` (objects and values) and
GetInstances (the unique keys of each table). The calls go through the ACS
and the USP controller over NATS, as a script's would. The result is the
snapshot shape of ``oktoscripts.sim.twin_models``.
"""

from __future__ import annotations

import re
from typing import Any

from oktoscripts.cwmp import client as cwmp_client
from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.twins import schemas
from oktoscripts.usp import messages
from oktoscripts.usp.client import call_agent
from oktoscripts.usp.messages import Msg
from oktoscripts.usp.proto import usp_msg_pb2

# Parameters per GetParameterValues: large enough to take 5,000 parameters in
# a few round trips, small enough for CPEs that cap their response size.
GPV_BATCH = 1000
_INSTANCE = re.compile(r"\.\d+\.\Z")
CALL_TIMEOUT_S = 60.0
_TYPE_NAMES = {
    value: name
    for name, value in (
        ("base64", usp_msg_pb2.GetSupportedDMResp.PARAM_BASE_64),
        ("boolean", usp_msg_pb2.GetSupportedDMResp.PARAM_BOOLEAN),
        ("dateTime", usp_msg_pb2.GetSupportedDMResp.PARAM_DATE_TIME),
        ("decimal", usp_msg_pb2.GetSupportedDMResp.PARAM_DECIMAL),
        ("hexBinary", usp_msg_pb2.GetSupportedDMResp.PARAM_HEX_BINARY),
        ("int", usp_msg_pb2.GetSupportedDMResp.PARAM_INT),
        ("long", usp_msg_pb2.GetSupportedDMResp.PARAM_LONG),
        ("string", usp_msg_pb2.GetSupportedDMResp.PARAM_STRING),
        ("unsignedInt", usp_msg_pb2.GetSupportedDMResp.PARAM_UNSIGNED_INT),
        ("unsignedLong", usp_msg_pb2.GetSupportedDMResp.PARAM_UNSIGNED_LONG),
    )
}


class SnapshotError(Exception):
    """The device could not be read; the message says which call failed and why."""


async def take_cwmp(nc: Any, serial: str, *, timeout_s: float = CALL_TIMEOUT_S) -> dict:
    """The whole parameter tree of CPE ``serial``."""
    names = await _cwmp(
        nc, serial, RpcRequest("GetParameterNames", path="", details=True), timeout_s
    )
    objects = [
        {"n": n, "w": bool(names["writable"].get(n))} for n in names["result"] if n.endswith(".")
    ]
    leaves = [n for n in names["result"] if not n.endswith(".")]
    params = []
    for start in range(0, len(leaves), GPV_BATCH):
        batch = leaves[start : start + GPV_BATCH]
        answer = await _cwmp(
            nc, serial, RpcRequest("GetParameterValues", names=batch, details=True), timeout_s
        )
        values, types = answer["result"], answer["types"]
        params += [
            {
                "n": n,
                "v": values.get(n, ""),
                "t": types.get(n, "string"),
                "w": bool(names["writable"].get(n)),
            }
            for n in batch
        ]
    roots = sorted((o["n"] for o in objects if o["n"].count(".") == 1), key=len)
    root = roots[0] if roots else leaves[0].split(".", 1)[0] + "." if leaves else ""
    if not root:
        raise SnapshotError(f"{serial} reported no parameters")
    tables = [o["n"] for o in objects if o["w"] and not _INSTANCE.search(o["n"])]
    return {
        "protocol": "cwmp",
        "root": root,
        "objects": objects,
        "params": params,
        # What AddObject gives on a table that had no instance to learn it from.
        "schemas": schemas.empty_table_schemas(tables, [o["n"] for o in objects]),
    }


async def _cwmp(nc: Any, serial: str, request: RpcRequest, timeout_s: float) -> dict:
    answer = await cwmp_client.call(nc, serial, request, timeout_s=timeout_s)
    if not answer.get("ok"):
        error = answer.get("error") or {}
        raise SnapshotError(
            f"{request.method} of {serial} failed: "
            f"{error.get('error_code')} {error.get('error_message')}"
        )
    return answer


async def take_usp(nc: Any, endpoint_id: str, *, timeout_s: float = CALL_TIMEOUT_S) -> dict:
    """The supported and instantiated data model of agent ``endpoint_id``."""
    supported = await _usp(
        nc,
        endpoint_id,
        messages.request(
            "get_supported_dm",
            obj_paths=["Device."],
            first_level_only=False,
            return_commands=True,
            return_events=True,
            return_params=True,
        ),
        timeout_s,
    )
    got = await _usp(nc, endpoint_id, messages.request("get", param_paths=["Device."]), timeout_s)
    instances = await _usp(
        nc,
        endpoint_id,
        messages.request("get_instances", obj_paths=["Device."], first_level_only=False),
        timeout_s,
    )
    keys = _unique_key_names(instances.body.response.get_instances_resp)
    entries = _supported_entries(supported.body.response.get_supported_dm_resp, keys)
    objects, values = _instantiated(
        got.body.response.get_resp, instances.body.response.get_instances_resp
    )
    return {"protocol": "usp", "supported": entries, "objects": objects, "values": values}


async def _usp(nc: Any, endpoint_id: str, msg: Msg, timeout_s: float) -> Msg:
    kind = messages.request_kind(msg)
    answer = await call_agent(nc, endpoint_id, msg, timeout_s)
    if not isinstance(answer, Msg):
        error = answer or {}
        raise SnapshotError(
            f"{kind} of {endpoint_id} failed: {error.get('error_code')} "
            f"{error.get('error_message')}"
        )
    if messages.response_kind(answer) is None:
        err = answer.body.error
        raise SnapshotError(f"{kind} of {endpoint_id} failed: {err.err_code} {err.err_msg}")
    return answer


def _unique_key_names(resp: usp_msg_pb2.GetInstancesResp) -> dict[str, list[str]]:
    """Supported table path ({i} notation) -> names of its unique keys."""
    from oktoscripts.sim.tr181 import supported_path

    out: dict[str, list[str]] = {}
    for result in resp.req_path_results:
        for inst in result.curr_insts:
            if inst.unique_keys:
                out.setdefault(supported_path(inst.instantiated_obj_path), list(inst.unique_keys))
    return out


def _supported_entries(
    resp: usp_msg_pb2.GetSupportedDMResp, keys: dict[str, list[str]]
) -> list[dict]:
    entries = []
    for result in resp.req_obj_results:
        if result.err_code:
            raise SnapshotError(
                f"GetSupportedDM refused {result.req_obj_path}: {result.err_code} {result.err_msg}"
            )
        for obj in result.supported_objs:
            entries.append(
                {
                    "path": obj.supported_obj_path,
                    "multi": obj.is_multi_instance,
                    "access": int(obj.access),
                    "unique_keys": keys.get(obj.supported_obj_path, []),
                    "params": [
                        {
                            "name": p.param_name,
                            "type": _TYPE_NAMES.get(p.value_type, "string"),
                            "access": int(p.access),
                        }
                        for p in obj.supported_params
                    ],
                    "commands": [
                        {
                            "name": c.command_name,
                            "async": c.command_type == usp_msg_pb2.GetSupportedDMResp.CMD_ASYNC,
                            "inputs": list(c.input_arg_names),
                            "outputs": list(c.output_arg_names),
                        }
                        for c in obj.supported_commands
                    ],
                    "events": [
                        {"name": e.event_name, "args": list(e.arg_names)}
                        for e in obj.supported_events
                    ],
                }
            )
    return entries


def _instantiated(
    got: usp_msg_pb2.GetResp, instances: usp_msg_pb2.GetInstancesResp
) -> tuple[list[str], list[dict]]:
    """Every object (those the Get reported, every instance and their parents) and value."""
    objects: dict[str, None] = {}
    values = []
    for result in got.req_path_results:
        if result.err_code:
            raise SnapshotError(
                f"Get refused {result.requested_path}: {result.err_code} {result.err_msg}"
            )
        for resolved in result.resolved_path_results:
            _add_with_parents(objects, resolved.resolved_path)
            values += [
                {"n": resolved.resolved_path + name, "v": value}
                for name, value in resolved.result_params.items()
            ]
    for result in instances.req_path_results:
        for inst in result.curr_insts:
            _add_with_parents(objects, inst.instantiated_obj_path)
    return list(objects), values


def _add_with_parents(objects: dict[str, None], path: str) -> None:
    parts = path.split(".")[:-1]
    for i in range(1, len(parts) + 1):
        if i < len(parts) and parts[i].isdigit():
            continue  # a table (its instances are the objects)
        objects.setdefault(".".join(parts[:i]) + ".", None)


def count(snapshot: dict) -> int:
    """How many parameters the snapshot holds."""
    return len(snapshot.get("params") or snapshot.get("values") or [])
