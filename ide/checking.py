"""The check behind the editor's live markers: the engine's Lua 5.1 syntax
check first, then, for a script that compiles, the lint."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from oktoscripts.bindings import all_bindings
from oktoscripts.lua.lint import lint
from oktoscripts.lua.syntax import check_syntax

_NEAR = re.compile(r"near '(.+)'$")


def check_source(source: str) -> list[dict[str, Any]]:
    """Problems as ``{"line", "column", "end_column", "message", "severity", "code"}``."""
    problems = []
    for error in check_syntax(source):
        column = max(0, (error.get("column") or 1) - 1)
        near = _NEAR.search(error["message"])
        token = near.group(1) if near and near.group(1) != "<eof>" else ""
        problems.append(
            {
                "line": error["line"] or 1,
                "column": column,
                # the token Lua names ("near 'x'"), else the whole line (end 0)
                "end_column": column + len(token) if token else 0,
                "message": error["message"],
                "severity": "error",
                "code": "syntax",
            }
        )
    if problems:
        return problems
    return lint(source, all_bindings())


def check_source_json(source: str) -> bytes:
    """The body of /api/check's answer, ``{"problems": [...]}`` as JSON: made in
    the checker process, so that a source with thousands of problems costs
    the web process no validation or encoding of each one."""
    return json.dumps({"problems": check_source(source)}).encode()


# The editor checks as its user types, so every signed-in user can ask for
# checks: they run in a process of their own (CPU there never slows the web
# process's requests), one at a time, on a source of bounded size, and the
# answer is given up after CHECK_TIMEOUT_S. A 200,000-character source full
# of lint warnings costs about 1.5 s of CPU.
MAX_SOURCE = 200_000
CHECK_TIMEOUT_S = 10.0
MAX_WAITING = 16

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
_waiting = 0


class CheckUnavailable(Exception):
    """The check could not be made now (too many waiting, took too long)."""


def _checker() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn: a clean interpreter, not a fork of a process with threads.
            _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    """Stop a checker that is stuck or broken; the next check starts a fresh one."""
    global _pool
    with _pool_lock:
        if _pool is pool:
            _pool = None
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


async def check_in_checker(source: str) -> bytes:
    """``check_source_json`` in the checker process, off this process's CPU."""
    global _waiting
    if _waiting >= MAX_WAITING:
        raise CheckUnavailable("too many checks are waiting; try again in a moment")
    _waiting += 1
    pool = _checker()
    try:
        future = asyncio.wrap_future(pool.submit(check_source_json, source))
        return await asyncio.wait_for(future, CHECK_TIMEOUT_S)
    except TimeoutError:
        _discard(pool)
        raise CheckUnavailable(f"the check took more than {CHECK_TIMEOUT_S:g} s") from None
    except BrokenProcessPool:
        _discard(pool)
        raise CheckUnavailable("the checker stopped; try again") from None
    finally:
        _waiting -= 1
