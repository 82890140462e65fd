"""Starting a run: the one action every entry point calls.

The IDE, the REST API, ``runscript --remote``, schedules, event triggers, bulk
runs and deployed listeners all start runs here, so every run gets the same
argument rule (``arguments.py``, with the version's declared defaults and
types), the same limits (the script's own, within the platform settings,
within the hard caps: ``platform_settings.effective_limits``),
and the same audit event (``run.start``), whoever or whatever started it.

What runs is a ``Source``: a saved script version, a draft (a script's unsaved
text, run as it is and kept with the run, no version made) or a file
(``runscript``). The run acts for ``user`` (its principal,
oktoscripts/runs/principal.py); the caller has checked that this user may
start it. ``start_run`` is for sync code, ``astart_run`` for async code with
its own NATS client.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from nats.aio.client import Client

from oktoscripts.lua.runtime import DEFAULT_RUNTIME
from oktoscripts.runs.models import Run
from oktoscripts.runs.submit import asubmit_run, submit_run
from oktoscripts.scripts import audit
from oktoscripts.scripts.arguments import clean_args, with_declarations
from oktoscripts.scripts.models import Script, ScriptVersion, content_hash
from oktoscripts.scripts.platform_settings import effective_limits


@dataclass(frozen=True)
class Source:
    """The exact code of a run, the name and runtime it runs under, the limits
    it asks for (within the platform's: see ``effective_limits``), and what it
    is: a saved ``version``, a draft of ``script``, or neither (a file)."""

    code: str
    name: str
    runtime: str = DEFAULT_RUNTIME
    own_limits: dict[str, Any] = field(default_factory=dict)
    version: ScriptVersion | None = None
    script: Script | None = None

    @classmethod
    def saved(cls, version: ScriptVersion, script: Script | None = None) -> Source:
        script = script or version.script
        return cls(
            version.content, script.name, script.runtime, dict(script.limits or {}), version, script
        )

    @classmethod
    def draft(cls, script: Script, code: str) -> Source:
        """A script's unsaved text: it runs as the script (name, runtime, limits),
        the run keeps the exact text, and no version is made."""
        return cls(code, script.name, script.runtime, dict(script.limits or {}), None, script)

    @classmethod
    def file(
        cls,
        name: str,
        code: str,
        runtime: str = DEFAULT_RUNTIME,
        limits: dict[str, Any] | None = None,
    ) -> Source:
        """Code from outside the script library (``runscript --remote FILE``)."""
        return cls(code, name, runtime, dict(limits or {}))

    @property
    def declarations(self) -> list[dict[str, Any]]:
        """The arguments a saved version declares. A draft has none: its
        declarations may be unsaved edits too, so it runs with the arguments
        given (the editor sends every row's value)."""
        return list(self.version.arguments or []) if self.version is not None else []

    @property
    def is_draft(self) -> bool:
        return self.version is None and self.script is not None

    def describe(self) -> dict[str, Any]:
        """What ran, for the audit event."""
        if self.version is not None:
            return {"version": self.version.number}
        if self.is_draft:
            base = self.script.latest_id and self.script.latest.number
            return {"draft": True, "base_version": base or None, "sha256": content_hash(self.code)}
        return {"file": self.name, "sha256": content_hash(self.code)}


@dataclass(frozen=True)
class Origin:
    """Who or what started the run, as the run records it: ``started_by`` (a
    Run.StartedBy), ``trigger`` (which schedule, event, bulk run or deployment,
    in words), for a deployed listener the ``listener_key`` of its consumers,
    and for a bulk run's item the ``replay_key`` that every attempt of the item
    shares (Run.replay_key: a lost run's next attempt makes no device call twice)."""

    started_by: str
    trigger: str = ""
    listener_key: str = ""
    replay_key: str = ""
    # "plan": the run's device writes are planned, not made (oktoscripts/runs/gates.py);
    # "apply": it applies the plan of run ``plan_of`` (oktoscripts/scripts/apply.py).
    mode: str = "run"
    plan_of: str | None = None
    debug: bool = False  # a debug run (the IDE's Debug button)
    replay_of: str | None = None  # "replay": the run whose recording answers
    fixture: int | None = None  # "replay": the test fixture whose recording answers


def _submission(
    source: Source,
    args: object,
    origin: Origin,
    user: Any,
    bounded_by_author: bool,
    run_id: str | None,
) -> dict[str, Any]:
    """Everything ``submit_run`` takes, checked and resolved (sync: reads the settings).
    Raises ArgumentError (a ValueError) for arguments the one rule refuses."""
    if origin.started_by not in Run.StartedBy.values:
        raise ValueError(f"unknown started_by {origin.started_by!r}")
    return {
        "script_name": source.name,
        "args": with_declarations(source.declarations, clean_args(args)),
        "runtime": source.runtime,
        "limits": effective_limits(source.own_limits),
        "started_by": origin.started_by,
        "user": user,
        "bounded_by_author": bounded_by_author,
        "script_version_id": source.version.pk if source.version is not None else None,
        "trigger": (origin.trigger or ("draft" if source.is_draft else ""))[:255],
        "run_id": run_id or str(uuid.uuid4()),
        "listener_key": origin.listener_key,
        "replay_key": origin.replay_key,
        "mode": origin.mode,
        "plan_of_id": origin.plan_of,
        "debug": origin.debug,
        "replay_of_id": origin.replay_of,
        "fixture_id": origin.fixture,
    }


def _record(run: Run, source: Source, origin: Origin, user: Any) -> None:
    actor = user if user is not None else origin.started_by
    extra = {"mode": origin.mode} if origin.mode != "run" else {}
    if origin.plan_of:
        extra["plan_of"] = str(origin.plan_of)
    if run.debug:
        extra["debug"] = True  # a debug run: it may be stepped through
    if origin.replay_of:
        extra["replay_of"] = str(origin.replay_of)
    if origin.fixture:
        extra["fixture"] = origin.fixture
    audit.record(
        actor,
        "run.start",
        source.name,
        run=str(run.pk),
        args=run.args,
        started_by=origin.started_by,
        trigger=run.trigger,
        **source.describe(),
        **extra,
    )


def start_run(
    source: Source,
    *,
    user: Any,
    args: object,
    origin: Origin,
    bounded_by_author: bool = False,
    run_id: str | None = None,
) -> Run:
    """Store and queue a run of ``source`` acting for ``user``, and audit it.
    Raises ValueError (bad arguments), IntegrityError (``run_id`` used already)
    or RunQueueError (NATS unreachable: the run is stored as failed)."""
    options = _submission(source, args, origin, user, bounded_by_author, run_id)
    run = submit_run(source.code, **options)
    _record(run, source, origin, user)
    return run


async def astart_run(
    source: Source,
    *,
    user: Any,
    args: object,
    origin: Origin,
    nc: Client,
    bounded_by_author: bool = False,
    run_id: str | None = None,
) -> Run:
    """``start_run`` for async code, over the caller's NATS client."""
    options = await sync_to_async(_submission)(
        source, args, origin, user, bounded_by_author, run_id
    )
    run = await asubmit_run(source.code, nc=nc, **options)
    await sync_to_async(_record)(run, source, origin, user)
    return run
