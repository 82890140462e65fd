"""``runscript SCRIPT --fixture NAME|all``: a script's test fixtures checked in
this process, without a worker (oktoscripts/scripts/fixtures.py).

Each fixture replays its recording against the chosen version through the
engine with a replay gate (nothing reaches a device; NATS and MongoDB are used
when configured, for bindings other than device calls), acting as the machine's
operator like ``runscript FILE``. One line per fixture: passed, FAILED or
DIVERGED with the first difference.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import asdict
from typing import Any

from django.core.management.base import CommandError

from oktoscripts.scripts import fixtures
from oktoscripts.scripts.models import Fixture, Script

EXIT_PASSED, EXIT_FAILED, EXIT_DIVERGED = 0, 1, 6


def check_fixtures(script_name: str, which: str, version: int | None) -> int:
    """Run the fixtures, print a line each and a summary; the exit status."""
    script = Script.objects.filter(name=script_name, deleted=False).first()
    if script is None:
        raise CommandError(f"no script {script_name!r} in the library", returncode=2)
    chosen = list(script.fixtures.order_by("name"))
    if which != fixtures.RESERVED:
        chosen = [f for f in chosen if f.name == which]
        if not chosen:
            raise CommandError(f"{script.name} has no fixture {which!r}", returncode=2)
    if not chosen:
        raise CommandError(f"{script.name} has no fixtures", returncode=2)
    try:
        saved = fixtures.version_to_run(script, version)
    except fixtures.FixtureError as exc:
        raise CommandError(str(exc), returncode=2) from None
    from oktoscripts.scripts.platform_settings import effective_limits

    limits = effective_limits(dict(script.limits or {}))
    verdicts = [asyncio.run(check_one(f, saved.content, script, limits)) for f in chosen]
    for fixture, verdict in zip(chosen, verdicts, strict=True):
        if verdict.passed:
            print(f"fixture {fixture.name!r} on v{saved.number}: passed")
        else:
            word = "DIVERGED" if verdict.diverged else "FAILED"
            print(f"fixture {fixture.name!r} on v{saved.number}: {word}: {verdict.difference}")
    passed = sum(v.passed for v in verdicts)
    diverged = sum(v.diverged for v in verdicts)
    failed = len(verdicts) - passed - diverged
    print(
        f"{len(verdicts)} fixture{'s' if len(verdicts) != 1 else ''}: {passed} passed, "
        f"{failed} failed, {diverged} diverged"
    )
    sys.stdout.flush()
    if diverged:
        return EXIT_DIVERGED
    return EXIT_FAILED if failed else EXIT_PASSED


async def check_one(
    fixture: Fixture, code: str, script: Script, limits: dict[str, Any]
) -> fixtures.Verdict:
    """Replay ``fixture`` against ``code`` and judge the outcome."""
    from oktoscripts.management.commands.runscript import run_in_process
    from oktoscripts.runs import gates

    printed: list[tuple[str, str, str | None]] = []

    def on_output(line: Any) -> None:
        printed.append((line.stream, line.text, line.level))

    outcome = await run_in_process(
        code,
        script.name,
        fixture.args,
        script.runtime,
        limits,
        on_output,
        gates.Replayer(fixture.recording),
    )
    error = asdict(outcome.error) if outcome.error is not None else None
    return fixtures.judge(
        fixture,
        outcome.status,
        outcome.result,
        error,
        outcome.metrics,
        fixtures.output_lines(printed),
    )
