"""The REST API's request and response bodies, as pydantic schemas: they check
requests (an unknown or read-only field is a 400) and document responses in
the OpenAPI document (/api/openapi.json)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from ninja import Schema
from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

# Times are ISO 8601 strings, in the zone they were made in (UTC, or a schedule's zone).
Time = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]
Json = Any  # any JSON value
Runtime = Literal["lua51", "luajit"]


class Request(Schema):
    """A request body: every field known (an unknown or read-only one is refused,
    never ignored), every value of its exact JSON type."""

    model_config = ConfigDict(extra="forbid")
    noun: ClassVar[str] = "field"  # what a field is called in the refusal

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(cls.model_fields), key=str)
            if unknown:
                raise ValueError(
                    f"unknown {cls.noun} {unknown[0]!r} (use "
                    f"{' or '.join(sorted(cls.model_fields))})"
                )
        return data


class Error(Schema):
    error: str = Field(description="what is wrong, in a sentence")
    fields: dict[str, str] | None = Field(None, description="per field, when fields are wrong")


class Limits(Schema):
    instructions: int
    memory_bytes: int
    wall_seconds: float
    output_bytes: int


# Checked by the domain's own rules (the same words for pages, REST and the command
# line), so typed here for the document only.
LimitOverrides = Annotated[
    Any,
    Field(
        json_schema_extra={
            "type": "object",
            "additionalProperties": {"type": ["number", "null"]},
            "description": (
                "instructions, memory_bytes, wall_seconds, output_bytes: a positive number; "
                "null or absent: the default"
            ),
        }
    ),
]
Args = Annotated[
    Any,
    Field(
        json_schema_extra={
            "type": "object",
            "maxProperties": 100,
            "description": "the script's arguments (its ...): names to JSON values "
            "(oktoscripts/scripts/arguments.py)",
        }
    ),
]

# -- scripts and versions --------------------------------------------------------


class ScriptOut(Schema):
    id: int
    name: str
    folder: str
    tags: list[str]
    description: str
    runtime: Runtime
    limits: dict[str, float] = Field(description="the script's own limits ({} = defaults)")
    deleted: bool
    created: Time
    updated: Time
    version: int | None = Field(description="the latest saved version's number")


class ScriptDetail(ScriptOut):
    content: str = Field(description="the latest saved version's text")


class ScriptList(Schema):
    scripts: list[ScriptOut]


class ScriptCreate(Request):
    name: StrictStr
    content: StrictStr = ""
    folder: StrictStr = ""
    tags: StrictStr = ""
    description: StrictStr = ""
    message: StrictStr = ""


class ScriptChange(Request):
    name: StrictStr | None = None
    folder: StrictStr | None = None
    tags: StrictStr | None = None
    description: StrictStr | None = None
    runtime: StrictStr | None = None
    limits: LimitOverrides | None = None


class ArgumentDeclaration(Request):
    noun: ClassVar[str] = "declaration field"
    name: StrictStr = Field(min_length=1, max_length=100)
    type: Literal["string", "number", "boolean", "json", "device"] = "string"
    default: Json = Field(None, description="a value of the type; null: no default")
    description: StrictStr = Field("", max_length=500)


class VersionOut(Schema):
    script_id: int
    number: int
    sha256: str
    author: str | None
    message: str
    created: Time
    arguments: list[ArgumentDeclaration] = Field(description="the arguments it declares")


class VersionDetail(VersionOut):
    content: str


class VersionList(Schema):
    versions: list[VersionOut]


class VersionSave(Request):
    content: StrictStr
    message: StrictStr = ""
    arguments: list[ArgumentDeclaration] | None = Field(
        None, description="the new version's argument declarations; null: the latest's"
    )
    base_version: StrictInt | None = Field(
        None, description="refuse (409) if another version was saved after this one"
    )


class Preset(Schema):
    name: str
    args: dict[str, Json]
    updated: Time
    updated_by: str | None


class PresetList(Schema):
    presets: list[Preset]


class PresetSave(Request):
    args: Args


class LastArgs(Schema):
    args: dict[str, Json] = Field(description="your arguments of your last run of this script")


class CheckRequest(Request):
    source: StrictStr = ""


class Problem(Schema):
    line: int
    column: int = Field(description="0-based")
    end_column: int = Field(description="0: to the end of the line")
    severity: Literal["error", "warning"]
    code: str = Field(description="syntax, unknown-global, arg-count, sandbox, unused-local, ...")
    message: str


class CheckResult(Schema):
    problems: list[Problem]


class Bindings(Schema):
    bindings: list[dict[str, Any]] = Field(
        description="the Lua API functions, as the editor uses them (name, params, returns, doc)"
    )


# -- runs ------------------------------------------------------------------------


class RunRequest(Request):
    script_id: StrictInt
    version: StrictInt | None = Field(None, description="a version number; null: latest saved")
    args: Args = None
    run_id: UUID | None = Field(
        None, description="an id chosen by the caller, to open the run's console before it starts"
    )
    code: StrictStr | None = Field(
        None,
        max_length=1_000_000,
        description="unsaved text to run as a draft of the script "
        "(kept with the run, no version made; needs "
        "the edit capability too); with it, no version",
    )
    mode: Literal["run", "plan"] = Field(
        "run",
        description="plan: reads go to the devices, "
        "writes are planned (not made); see /runs/{id}/plan",
    )
    debug: StrictBool = Field(
        False, description='a debug run: it waits for the IDE\'s debugger (README "Debugger")'
    )


class BreakpointsBody(Request):
    breakpoints: list[dict] = Field(
        description='[{line, condition?, hit?, log?}] (README "Debugger")'
    )


class RunOut(Schema):
    id: str
    script_name: str
    script_version_id: int | None
    version: int | None
    status: str
    started_by: str
    trigger: str
    user: str | None
    args: dict[str, Json]
    runtime: Runtime
    created: Time
    started: Time
    finished: Time
    error: dict[str, Json] | None
    metrics: dict[str, Json] | None
    mode: Literal["run", "plan", "apply", "replay"] = Field(
        description="plan: writes planned, not made; apply: applies the plan of run plan_of; "
        "replay: device calls answered from a recording"
    )
    plan_of: str | None


class ReplayRequest(Request):
    version: StrictInt | None = Field(
        None, description="another version of the run's script to replay (default: the run's own)"
    )


class PlanOut(Schema):
    run_id: str
    status: str
    plan: dict[str, Json] | None = Field(
        description="per device, each planned call with its changes (before, after) and script line"
    )
    summary: dict[str, int]
    applications: list[str] = Field(description="the runs that applied it")


class RunList(Schema):
    runs: list[RunOut]
    next_before: str | None = Field(description="pass as 'before' for the next page")


class Line(Schema):
    seq: int
    stream: Literal["stdout", "log", "call", "system"]
    text: str
    level: str | None
    time: float = Field(description="seconds since the epoch")


class RunOutput(Schema):
    status: str
    lines: list[Line]
    more: bool = Field(description="more lines follow: ask again with 'after'")


class RunResult(Schema):
    status: str
    final: bool
    result: Json
    error: dict[str, Json] | None
    metrics: dict[str, Json] | None


class DeviceCallBase(Schema):
    n: int = Field(description="its place among the run's device calls, from 1")
    seq: int | None = Field(description="the seq of its output line (None: not printed)")
    name: str = Field(description="the Lua function that made it")
    target: str | None = Field(description="the device: serial or Endpoint ID")
    line: int | None = Field(description="the script line that made it")
    at: float | None = Field(description="when it started, epoch seconds")
    latency_s: float
    ok: bool
    protocol: str | None = Field(description="cwmp or usp (None: not recorded)")
    method: str | None = Field(description="the RPC or USP message type")


class DeviceCall(DeviceCallBase):
    recorded: bool = Field(description="its request and answer are recorded")


class DeviceCalls(Schema):
    calls: list[DeviceCall]
    final: bool = Field(description="the run is over (the list will not grow)")
    truncated: bool = Field(description="the recording stopped at its size limit")


class WireText(Schema):
    format: Literal["xml", "json"]
    text: str
    note: str = ""


class Wire(Schema):
    request: WireText
    answer: WireText


class DeviceCallDetail(DeviceCallBase):
    wire: Wire | None = Field(description="request and answer as sent and got")
    why: str = Field("", description="why there is no wire text")


class Cancelled(Schema):
    id: str
    status: str = Field(description="cancelled, cancelling, or the final status it had")


# -- settings ----------------------------------------------------------------------


class SettingsOut(Schema):
    limits: dict[str, float | None] = Field(description="as stored; null: built-in default")
    effective_limits: Limits
    builtin_limits: Limits
    default_runtime: Runtime
    updated: Time
    updated_by: str | None


class SettingsChanged(SettingsOut):
    changed: list[str]


class SettingsChange(Request):
    noun: ClassVar[str] = "setting"

    limits: LimitOverrides | None = None
    default_runtime: StrictStr | None = None


# -- devices -----------------------------------------------------------------------


class Device(Schema):
    """A device: the device table of the Lua API, and what the protocols report."""

    sn: str
    alias: str
    vendor: str
    model: str
    version: str
    hw_version: str
    product_class: str
    oui: str
    data_model: str
    ip: str
    status: int = Field(description="0 offline, 1 associating, 2 online")
    status_name: str
    cwmp: bool
    usp: bool
    mtps: list[str]
    last_seen: Time
    first_seen: Time
    offline_at: Time
    params: dict[str, Json]
    cwmp_details: dict[str, Json] | None = Field(
        None, description="a CWMP device's session facts (never a password)"
    )
    usp_details: dict[str, Json] | None = Field(None, description="a USP agent's MTPs")
    twin: bool = Field(False, description="a device twin, simulated from a snapshot")
    twin_of: str = Field("", description="a twin's original device")


class DeviceList(Schema):
    count: int
    page: int
    page_size: int
    results: list[Device]


class DeviceCounts(Schema):
    status: dict[str, int]
    vendor: dict[str, int]
    product_class: dict[str, int]


class AliasChange(Request):
    alias: StrictStr = Field(max_length=200)


class DeviceDeleted(Schema):
    deleted: bool
    serial: str


class DeviceFilter(Request):
    noun: ClassVar[str] = "filter"

    status: Literal[0, 1, 2] | None = None
    vendor: StrictStr | None = None
    product_class: StrictStr | None = None
    protocol: Literal["cwmp", "usp"] | None = None
    text: StrictStr | None = Field(None, description="part of the serial or alias")
    twins: Literal["exclude", "include", "only"] | None = Field(
        None,
        description="device twins: left out (exclude, the default), with the real "
        "devices (include), or alone (only)",
    )


# -- automations ---------------------------------------------------------------------


class ScriptBound(Schema):
    script_id: int
    script: str
    version: int | None = Field(description="the pinned version; null: latest saved")
    args: dict[str, Json]
    created_by: str | None
    configured_by: str | None = Field(description="whom its runs act for")
    created: Time
    updated: Time


class ScriptTarget(Request):
    script_id: StrictInt
    version: StrictInt | None = Field(None, description="pin a version; null: latest saved")
    args: Args = None


class Tick(Schema):
    tick: Time
    outcome: str
    missed: int
    run_id: str | None
    message: str
    claimed_by: str


class ScheduleOut(ScriptBound):
    id: int
    name: str
    cron: str
    timezone: str
    enabled: bool
    missed: str
    next_tick: Time
    last_tick: Time
    last_run_id: str | None


class ScheduleDetail(ScheduleOut):
    preview: list[str] = Field(description="the next run times, in the schedule's zone")
    ticks: list[Tick]


class ScheduleList(Schema):
    schedules: list[ScheduleOut]


class ScheduleCreate(ScriptTarget):
    name: StrictStr
    cron: StrictStr = Field(description="5 fields, or 6 with seconds last")
    timezone: StrictStr = "UTC"
    missed: Literal["skip", "run_once"] = "skip"
    enabled: StrictBool = True


class ScheduleChange(Request):
    name: StrictStr | None = None
    cron: StrictStr | None = None
    timezone: StrictStr | None = None
    missed: Literal["skip", "run_once"] | None = None
    enabled: StrictBool | None = None
    version: StrictInt | None = Field(None, description="re-pin; null: latest saved")
    args: Args = None


class Preview(Request):
    cron: StrictStr = ""
    timezone: StrictStr = "UTC"
    count: StrictInt = 5


class PreviewOut(Schema):
    cron: str
    timezone: str
    next: list[str]


class Deleted(Schema):
    deleted: int


class Progress(Schema):
    total: int
    done: int
    percent: float
    by_status: dict[str, int]


class BulkItem(Schema):
    serial: str
    status: str
    attempts: int
    run_id: str | None
    result: Json
    error: str
    updated: Time


class BulkWave(Schema):
    wave: int
    canary: bool
    total: int
    by_status: dict[str, int]


class BulkOut(ScriptBound):
    id: int
    name: str
    status: str = Field(
        description="approval (awaiting a second person), running, paused, "
        "stopping, stopped or finished"
    )
    device_filter: dict[str, Json]
    serial_arg: str
    concurrency: int
    finished: Time
    progress: Progress
    canary: int
    wave_size: int
    wave_percent: int
    wave_pause_s: int
    failure_threshold: float | None
    current_wave: int
    waves: list[BulkWave]
    next_wave_at: Time
    stop_reason: str = Field(description="why it stopped (failure threshold, abort)")
    approved_by: str | None
    approved_at: Time


class BulkDetail(BulkOut):
    items: list[BulkItem] = Field(description="at most 1000, in serial order")


class BulkRetried(BulkOut):
    retried: int


class BulkList(Schema):
    bulk_runs: list[BulkOut]


class BulkCreate(ScriptTarget):
    device_filter: DeviceFilter = Field(default_factory=DeviceFilter)
    concurrency: StrictInt = 10
    serial_arg: StrictStr = "serial"
    name: StrictStr = ""
    mode: Literal["run", "plan"] = Field(
        "run",
        description="plan: every device's run plans its writes; then POST /bulk-runs/{id}/apply",
    )
    canary: StrictInt = Field(0, description="the first N devices run first, as wave 0")
    wave_size: StrictInt = Field(0, description="devices per wave after the canary")
    wave_percent: StrictInt = Field(0, description="or: percent of the devices per wave")
    wave_pause_s: StrictInt = Field(0, description="seconds between waves")
    failure_threshold: float | None = Field(
        None, description="percent of a wave's devices failing that stops the bulk run"
    )


class RolloutPolicyOut(Schema):
    approval_above: int | None = Field(
        description="bulk runs over more devices than this "
        "need a second person's approval; null: none"
    )
    updated: Time
    updated_by: str | None


class RolloutPolicyChange(Request):
    approval_above: StrictInt | None


class TriggerOut(ScriptBound):
    id: int
    name: str
    kind: Literal["cwmp_event", "new_device"]
    event: str
    device_filter: dict[str, Json]
    enabled: bool
    active_since: Time
    fired: int
    last_fired: Time


class TriggerList(Schema):
    triggers: list[TriggerOut]


class TriggerCreate(ScriptTarget):
    name: StrictStr
    kind: Literal["cwmp_event", "new_device"]
    event: StrictStr = Field("", description="a CWMP event code, e.g. 1 or '1 BOOT'")
    device_filter: DeviceFilter = Field(default_factory=DeviceFilter)
    enabled: StrictBool = True


class TriggerChange(Request):
    name: StrictStr | None = None
    kind: Literal["cwmp_event", "new_device"] | None = None
    event: StrictStr | None = None
    device_filter: DeviceFilter | None = None
    enabled: StrictBool | None = None
    version: StrictInt | None = None
    args: Args = None


class DeploymentOut(ScriptBound):
    id: int
    name: str
    desired: Literal["running", "stopped"]
    state: str
    current_run_id: str | None
    run_status: str | None
    worker_id: str | None
    restarts: int
    last_started: Time
    last_end: str
    events: int
    last_events: list[dict[str, Json]]
    last_event_at: Time


class DeploymentStopped(DeploymentOut):
    warning: str | None


class DeploymentList(Schema):
    deployments: list[DeploymentOut]


class DeploymentCreate(ScriptTarget):
    name: StrictStr = ""


class TwinRequest(Request):
    source: StrictStr = Field(description="the device to twin (serial or Endpoint ID)")
    name: StrictStr | None = Field(
        None,
        description="the twin's serial (default: the device's "
        "serial + '~twin', a USP Endpoint ID + '-twin')",
    )


class TwinReset(Request):
    serial: StrictStr = Field(description="the twin")


class TwinOut(Schema):
    serial: str
    source: str = Field(description="the original device")
    protocol: str
    state: str = Field(description="requested, snapshotting, running or failed")
    snapshot: int | None = Field(description="the snapshot version it answers from")
    error: str
    requested_by: str
    created_at: Time
    updated_at: Time


class TwinList(Schema):
    results: list[TwinOut]


class SnapshotOut(Schema):
    serial: str
    version: int
    protocol: str
    taken_at: Time
    parameters: int
    identity: dict[str, Json]


class SnapshotList(Schema):
    results: list[SnapshotOut]
