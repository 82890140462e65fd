"""Replaying a run: the same code (the same version), with the same arguments,
against the recording of the run's device calls instead of devices
(``gates.Replayer``). The replay fails at the first call the recording does
not have at that point, saying where (``metrics.replay.diverged``)."""

from __future__ import annotations

from typing import Any


def start_replay(recorded: Any, user: Any, started_by: str, version: int | None = None) -> Any:
    """Start the replay of ``recorded`` (a finished Run), acting for ``user``: its
    own version, or ``version`` of its script (does a new version still do the
    same on this recording?). ValueError says why it cannot be replayed."""
    from oktoscripts.runs.models import Run
    from oktoscripts.scripts.models import ScriptVersion
    from oktoscripts.scripts.start import Origin, Source, start_run

    if recorded.mode == Run.Mode.REPLAY and recorded.replay_of is not None:
        recorded = recorded.replay_of  # a replay again: of the recorded run
    if recorded.mode not in (Run.Mode.RUN, Run.Mode.APPLY) or not recorded.is_final:
        raise ValueError("only a finished run (not a plan) can be replayed")
    if "recording" not in (recorded.metrics or {}):
        raise ValueError("this run has no recording of device calls to replay")
    saved = (
        ScriptVersion.objects.select_related("script").filter(pk=recorded.script_version_id).first()
    )
    if version is not None:
        if saved is None:
            raise ValueError("this run ran no saved version: only its own code can replay")
        saved = (
            ScriptVersion.objects.select_related("script")
            .filter(script=saved.script, number=version)
            .first()
        )
        if saved is None:
            raise ValueError(f"the script has no version {version}")
    if saved is not None:
        source = Source.saved(saved)
    else:
        source = Source.file(recorded.script_name, recorded.code, recorded.runtime, recorded.limits)
    origin = Origin(
        started_by,
        trigger=f"replay of run {recorded.pk}",
        mode="replay",
        replay_of=str(recorded.pk),
    )
    return start_run(source, user=user, args=recorded.args, origin=origin)
