"""Test fixtures of a script: a recording of device calls kept with what the
script must do on it.

A fixture is saved from a finished run (its recording, its arguments, and by
default its status, result and printed lines as the expectation). Running it
replays the recording against a version of the script (the latest, or one
chosen): a replay run (``gates.Replayer``) whose device calls are answered
from the fixture's copy of the recording, reaching no device. It passes when
the replay did not diverge from the recording and ended with the expected
status, result and (when the fixture checks them) output lines; else the
verdict names the first difference.

The IDE runs fixtures through the worker (``start_fixture_run``);
``runscript SCRIPT --fixture NAME`` runs them in its own process. Both judge
with ``judge``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from oktoscripts.scripts.models import Fixture, Script, ScriptVersion

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}")
# ``--fixture all`` runs every fixture of a script: no fixture may be called so.
RESERVED = "all"
# Streams whose lines a fixture compares (device-call lines carry latencies, and
# system lines are the platform's, not the script's).
CHECKED_STREAMS = ("stdout", "log")
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "limit_exceeded", "lost")


class FixtureError(ValueError):
    """A fixture that cannot be saved or run; the message says why."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of a fixture's run: passed, or the first difference found.
    ``diverged``: the script asked for a device call the recording does not have."""

    passed: bool
    difference: str = ""
    diverged: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "difference": self.difference, "diverged": self.diverged}


def output_text(stream: str, text: str, level: str | None) -> str | None:
    """How an output line reads in a fixture's expected output (None: not compared)."""
    if stream == "stdout":
        return text
    if stream == "log":
        return f"[{level or 'info'}] {text}"
    return None


def output_lines(lines: Iterable[tuple[str, str, str | None]]) -> list[str]:
    """The compared lines of (stream, text, level) rows, in order."""
    return [t for t in (output_text(*row) for row in lines) if t is not None]


def _normal(value: Any) -> Any:
    """A value as the database stores it (JSON), so a result read back from a run
    and one just returned by the engine compare equal."""
    return json.loads(json.dumps(value, default=str))


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME.fullmatch(name):
        raise FixtureError(
            "a fixture's name is 1 to 100 letters, digits, spaces, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    if name.lower() == RESERVED:
        raise FixtureError(f"{RESERVED!r} names every fixture of a script: choose another name")
    return name


def recorded_run(run: Any) -> Any:
    """The run whose recording a fixture of ``run`` keeps (a replay's recorded run)."""
    from oktoscripts.runs.models import Run

    if run.mode == Run.Mode.REPLAY and run.replay_of_id is not None:
        run = Run.objects.get(pk=run.replay_of_id)
    if run.mode not in (Run.Mode.RUN, Run.Mode.APPLY) or not run.is_final:
        raise FixtureError("only a finished run (not a plan, not running) can become a fixture")
    return run


def script_of(run: Any) -> Script | None:
    """The library script a run ran: its version's (a script may have been renamed
    since), else the script of its name (a draft); None if deleted or unknown."""
    if run.script_version_id is not None:
        script = Script.objects.filter(versions__pk=run.script_version_id).first()
    else:
        script = Script.objects.filter(name=run.script_name).first()
    return script if script is not None and not script.deleted else None


def save_from_run(
    run: Any,
    name: str,
    user: Any,
    *,
    expected_result: Any = ...,
    expected_status: str | None = None,
    check_output: bool = True,
) -> Fixture:
    """Make fixture ``name`` of the run's script from the run: its recording and
    arguments, and as the expectation what the run did (or ``expected_result`` /
    ``expected_status`` when given; ``check_output`` False leaves lines unchecked)."""
    name = check_name(name)
    run = recorded_run(run)
    script = script_of(run)
    if script is None:
        raise FixtureError(f"no script {run.script_name!r} in the library: fixtures are per script")
    if expected_status is not None and expected_status not in FINAL_STATUSES:
        raise FixtureError(f"unknown status {expected_status!r} (use {', '.join(FINAL_STATUSES)})")
    recording = (run.metrics or {}).get("recording") or {"calls": [], "truncated": False}
    if recording.get("truncated"):
        raise FixtureError("this run's recording was cut short: it cannot answer a whole replay")
    output = None
    if check_output:
        rows = run.output.order_by("seq").values_list("stream", "text", "level")
        output = output_lines(rows)
    version = (
        ScriptVersion.objects.filter(pk=run.script_version_id).values_list("number", flat=True)
    ).first()
    if Fixture.objects.filter(script=script, name=name).exists():
        raise FixtureError(f"{script.name} has a fixture {name!r} already")
    return Fixture.objects.create(
        script=script,
        name=name,
        recording={"calls": recording.get("calls") or [], "truncated": False},
        args=run.args or {},
        expected_status=expected_status or run.status,
        expected_result=_normal(run.result if expected_result is ... else expected_result),
        expected_output=output,
        source_run=run,
        source_version=version,
        created_by=user if getattr(user, "pk", None) else None,
    )


def version_to_run(script: Script, number: int | None) -> ScriptVersion:
    """The version a fixture runs against: ``number``, or the latest saved one."""
    if number is None:
        if script.latest_id is None:
            raise FixtureError(f"{script.name} has no saved version")
        return ScriptVersion.objects.select_related("script").get(pk=script.latest_id)
    found = ScriptVersion.objects.select_related("script").filter(script=script, number=number)
    version = found.first()
    if version is None:
        raise FixtureError(f"{script.name} has no version {number}")
    return version


def start_fixture_run(
    fixture: Fixture, user: Any, started_by: str, version: int | None = None
) -> Any:
    """Queue the replay of ``fixture`` against ``version`` of its script (default:
    the latest); the worker answers its device calls from the fixture's recording."""
    from oktoscripts.scripts.start import Origin, Source, start_run

    if fixture.script.deleted:
        raise FixtureError("this script is deleted; restore it first")
    saved = version_to_run(fixture.script, version)
    origin = Origin(
        started_by,
        trigger=f"fixture {fixture.name}",
        mode="replay",
        replay_of=str(fixture.source_run_id) if fixture.source_run_id else None,
        fixture=fixture.pk,
    )
    return start_run(Source.saved(saved), user=user, args=fixture.args, origin=origin)


def judge(
    fixture: Fixture,
    status: str,
    result: Any,
    error: dict | None,
    metrics: dict | None,
    output: list[str],
) -> Verdict:
    """Whether a replay of ``fixture`` did what it must; else the first difference."""
    diverged = ((metrics or {}).get("replay") or {}).get("diverged")
    if diverged:
        where = f" (line {diverged['line']})" if diverged.get("line") else ""
        return Verdict(
            False,
            f"diverged from the recording at device call {diverged['call']}{where}: "
            f"{diverged['why']}",
            diverged=True,
        )
    if status != fixture.expected_status:
        why = f": {error.get('message')}" if error and error.get("message") else ""
        return Verdict(False, f"status: expected {fixture.expected_status}, got {status}{why}")
    difference = first_difference(fixture.expected_result, _normal(result), "result")
    if difference:
        return Verdict(False, difference)
    if fixture.expected_output is not None:
        difference = _output_difference(fixture.expected_output, output)
        if difference:
            return Verdict(False, difference)
    return Verdict(True)


def first_difference(expected: Any, got: Any, where: str) -> str:
    """The first place where ``got`` differs from ``expected`` ("" when equal)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in sorted(set(expected) | set(got), key=str):
            if key not in got:
                return f"{where}.{key}: expected {_show(expected[key])}, missing"
            if key not in expected:
                return f"{where}.{key}: not expected, got {_show(got[key])}"
            found = first_difference(expected[key], got[key], f"{where}.{key}")
            if found:
                return found
        return ""
    if isinstance(expected, list) and isinstance(got, list):
        for i, (e, g) in enumerate(zip(expected, got, strict=False)):
            found = first_difference(e, g, f"{where}[{i + 1}]")
            if found:
                return found
        if len(expected) != len(got):
            return f"{where}: expected {len(expected)} items, got {len(got)}"
        return ""
    if expected == got and _kind(expected) == _kind(got):
        return ""
    return f"{where}: expected {_show(expected)}, got {_show(got)}"


def _kind(value: Any) -> str:
    """What a JSON value is: 2 and 2.0 are the same number, true is not 1."""
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else type(value).__name__


def _output_difference(expected: list[str], got: list[str]) -> str:
    for i, (e, g) in enumerate(zip(expected, got, strict=False)):
        if e != g:
            return f"output line {i + 1}: expected {_show(e)}, got {_show(g)}"
    if len(got) < len(expected):
        return (
            f"output line {len(got) + 1}: expected {_show(expected[len(got)])}, got no more lines"
        )
    if len(got) > len(expected):
        return f"output line {len(expected) + 1}: not expected, got {_show(got[len(expected)])}"
    return ""


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def run_verdict(run: Any, fixture: Fixture) -> Verdict | None:
    """The verdict of a finished fixture run read from the database (None while it runs)."""
    if not run.is_final:
        return None
    rows = run.output.order_by("seq").values_list("stream", "text", "level")
    return judge(fixture, run.status, run.result, run.error, run.metrics, output_lines(rows))


def last_runs(fixtures: list[Fixture]) -> dict[int, Any]:
    """The newest run of each fixture (fixture pk -> Run); one indexed query each
    (a script has a handful of fixtures, each perhaps run many times)."""
    from oktoscripts.runs.models import Run

    out: dict[int, Any] = {}
    for fixture in fixtures:
        run = Run.objects.filter(fixture=fixture).defer("code").order_by("-created").first()
        if run is not None:
            out[fixture.pk] = run
    return out
