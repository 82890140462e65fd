"""``python manage.py runscript FILE.lua``: run a script from the command line.

In-process by default (no worker, no database record; NATS and MongoDB are
used when configured, for the bindings that need them), or with --remote
through the run queue like a run from the IDE (a worker must be running; the
run is recorded). Output is printed as it comes, the result as JSON at the
end. Exit status: 0 succeeded, 1 failed, 2 bad command line or missing file,
3 limit exceeded, 4 cancelled, 5 lost.

``runscript SCRIPT --fixture NAME`` (or ``--fixture all``) runs test fixtures
of the library's script SCRIPT instead: each replays its recording against
the script's latest version (or ``--script-version N``) in this process, and says
passed or the first difference. Exit status: 0 every fixture passed, 1 one
failed (status, result or output differ), 6 one diverged from its recording
(the script asked for a device call the recording does not have), 2 bad
command line or no such script, fixture or version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import uuid
from functools import partial
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from oktoscripts.lua.limits import Limits
from oktoscripts.lua.runtime import DEFAULT_RUNTIME, RUNTIMES
from oktoscripts.runs import live
from oktoscripts.runs.principal import Principal

# --remote: say so when no worker took the run after this long.
WORKER_HINT_S = 3.0

EXIT_STATUS = {"succeeded": 0, "failed": 1, "limit_exceeded": 3, "cancelled": 4, "lost": 5}
EXIT_FIXTURE_FAILED, EXIT_FIXTURE_DIVERGED = 1, 6


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` gives the string value; ``key:=json`` a JSON value (``count:=3``)."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--arg {pair!r}: expected key=value or key:=json", returncode=2)
        if key.endswith(":"):
            key = key[:-1]
            try:
                args[key] = json.loads(value)
            except ValueError:
                raise CommandError(
                    f"--arg {pair!r}: not valid JSON after :=", returncode=2
                ) from None
        else:
            args[key] = value
    return args


def format_line(stream: str, text: str, level: str | None) -> str:
    if stream == "log":
        return f"[{level or 'info'}] {text}"
    if stream == "call":
        return f"-> {text}"
    if stream == "system":
        return f"# {text}"
    return text


def print_error(error: dict | None) -> None:
    if not error:
        return
    print(f"error: {error.get('message')}", file=sys.stderr)
    for frame in error.get("traceback") or []:
        where = f"{frame.get('source')}:{frame.get('line')}"
        function = frame.get("function")
        print(f"  at {where}" + (f" in {function}" if function else ""), file=sys.stderr)


class Command(BaseCommand):
    help = __doc__.split("\n\n")[1].replace("\n", " ")

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("file", help="the Lua script (with --fixture: a script's name)")
        parser.add_argument(
            "--fixture",
            metavar="NAME",
            help="run the script's test fixture NAME, or all of them with 'all'",
        )
        parser.add_argument(
            "--script-version",
            type=int,
            metavar="N",
            help="with --fixture: the script version to test (default: the latest)",
        )
        parser.add_argument(
            "--arg",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an argument for the script (repeatable); KEY:=JSON for "
            "numbers, booleans and tables",
        )
        parser.add_argument(
            "--remote",
            action="store_true",
            help="run through the run queue on a worker and record the run",
        )
        parser.add_argument("--runtime", choices=tuple(RUNTIMES), default=DEFAULT_RUNTIME)
        parser.add_argument(
            "--limit",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="override a limit: instructions, memory_bytes, wall_seconds, output_bytes",
        )

    def handle(self, *args: object, **options: Any) -> None:
        if options["fixture"]:
            from oktoscripts.management.fixturecheck import check_fixtures

            sys.exit(check_fixtures(options["file"], options["fixture"], options["script_version"]))
        if options["script_version"] is not None:
            raise CommandError("--script-version goes with --fixture", returncode=2)
        path = Path(options["file"])
        try:
            code = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(f"no such file: {path}", returncode=2) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}", returncode=2) from None
        script_args = parse_args(options["arg"])
        limits = parse_args([pair.replace("=", ":=", 1) for pair in options["limit"]])
        try:
            Limits.with_overrides(limits)
        except ValueError as exc:
            raise CommandError(f"--limit: {exc}", returncode=2) from None
        if options["remote"]:
            status, result, error = asyncio.run(
                run_remote(code, path.name, script_args, options["runtime"], limits)
            )
        else:
            status, result, error = asyncio.run(
                run_local(code, path.name, script_args, options["runtime"], limits)
            )
        self.finish(status, result, error)

    def finish(self, status: str, result: Any, error: dict | None) -> None:
        sys.stdout.flush()
        if status == "succeeded":
            print(json.dumps(result, ensure_ascii=False))
        else:
            print_error(error)
            print(f"run {status}", file=sys.stderr)
        sys.stdout.flush()
        sys.exit(EXIT_STATUS.get(status, 1))


def on_interrupt(cancel: Any) -> None:
    """Ctrl-C cancels the run (the run still ends and reports normally). Called
    from another thread than the main one (a test), Ctrl-C keeps its default."""
    with contextlib.suppress(RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, cancel)


async def connect_if_configured() -> Any:
    from django.conf import settings

    from oktoscripts.bus.connection import connect

    if not settings.NATS_URL:
        return None
    try:
        return await connect("runscript", first_attempts=2, connect_timeout=2)
    except Exception as exc:  # noqa: BLE001 - only bindings that need NATS will fail
        print(
            f"note: NATS at {settings.NATS_URL} is unreachable ({exc}); bindings that "
            "need it will fail",
            file=sys.stderr,
        )
        return None


async def run_local(
    code: str, name: str, args: dict, runtime: str, limits: dict
) -> tuple[str, Any, dict | None]:
    from dataclasses import asdict

    def on_output(line: Any) -> None:
        print(format_line(line.stream, line.text, line.level), flush=True)

    outcome = await run_in_process(code, name, args, runtime, limits, on_output)
    error = asdict(outcome.error) if outcome.error is not None else None
    return outcome.status, outcome.result, error


async def run_in_process(
    code: str,
    name: str,
    args: dict,
    runtime: str,
    limits: dict,
    on_output: Any,
    gate: Any = None,
) -> Any:
    """Run ``code`` in this process (Ctrl-C cancels it); its RunOutcome. ``gate``:
    the run's device gate (a fixture's replay, oktoscripts/runs/gates.py)."""
    from oktoscripts.lua.run import LuaRun
    from oktoscripts.runs.listenerevents import announce_soon
    from oktoscripts.runs.services import build_services, close_services

    run_id = f"local-{uuid.uuid4().hex[:8]}"
    nc = await connect_if_configured()
    services = build_services(nc)
    lua = LuaRun(
        code,
        name=name,
        run_id=run_id,
        args=args,
        limits=Limits.with_overrides(limits),
        runtime=runtime,
        services=services,
        on_output=on_output,
        on_listener_event=partial(announce_soon, services, run_id),
        # Whoever can run this command can read the database and the secret key:
        # the machine's operator, trusted with every binding.
        principal=Principal.operator(),
        gate=gate,
    )
    on_interrupt(lua.cancel)
    try:
        return await lua.run()
    finally:
        close_services(services)
        if nc is not None:
            await nc.close()


async def run_remote(
    code: str, name: str, args: dict, runtime: str, limits: dict
) -> tuple[str, Any, dict | None]:
    from django.conf import settings

    from oktoscripts.bus.connection import connect
    from oktoscripts.runs.submit import acancel_run
    from oktoscripts.scripts.start import Origin, Source, astart_run

    try:
        nc = await connect("runscript --remote", first_attempts=4)
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        raise CommandError(
            f"--remote: cannot reach NATS at {settings.NATS_URL}: {exc}", returncode=2
        ) from None
    run_id = str(uuid.uuid4())
    feed = live.RunFeed(run_id)
    await feed.subscribe(nc)  # first: every line and status of the run
    try:
        try:
            # No user: the machine's operator (oktoscripts/runs/principal.py).
            await astart_run(
                Source.file(name, code, runtime, limits),
                user=None,
                args=args,
                origin=Origin("cli"),
                nc=nc,
                run_id=run_id,
            )
        except ValueError as exc:  # the argument rule, a limit
            raise CommandError(f"--remote: {exc}", returncode=2) from None
        print(f"queued run {run_id}", file=sys.stderr, flush=True)
        on_interrupt(lambda: asyncio.ensure_future(acancel_run(run_id, nc=nc)))
        taken = False

        def hint() -> None:
            if not taken:
                print(
                    "no worker has taken it yet: is `python manage.py worker` running?",
                    file=sys.stderr,
                    flush=True,
                )

        asyncio.get_running_loop().call_later(WORKER_HINT_S, hint)
        async for kind, data in feed.events():
            if kind == "lines":
                for line in data["lines"]:
                    print(format_line(line["stream"], line["text"], line.get("level")), flush=True)
            elif kind in ("run", "status"):
                taken = taken or data["status"] != "queued"
            elif kind == "end":  # the stored outcome
                return data["status"], data["result"], data["error"]
    finally:
        await feed.close()
        await nc.close()
    raise CommandError("--remote: the run's feed ended without its outcome")
