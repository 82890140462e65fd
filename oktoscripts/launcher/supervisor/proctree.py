"""Linux process-tree facts (from /proc) and the knobs that keep a tree from
outliving its supervisor.

- Each child runs in its own session and process group, so a signal to the
  group reaches its own children too, and Ctrl-C in the terminal reaches only
  the supervisor, which then stops everything in order.
- Each child asks the kernel to SIGKILL it when the supervisor dies
  (PR_SET_PDEATHSIG), so even a SIGKILLed supervisor leaves no child behind
  (a child's own children are then the child's business: none has any today).
  SIGKILL rather than SIGTERM: without the supervisor nothing stops them in
  order, and a process whose services vanish at the same moment may hang in
  its own shutdown. The embedded servers journal their data, so they lose
  nothing by it.
- The supervisor is a "child subreaper" (PR_SET_CHILD_SUBREAPER): a grandchild
  whose parent died is re-parented to it rather than to init, so it can still
  stop it and collect its exit status. It knows which processes to stop by
  remembering the descendants of its children as it goes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

# Looked up in the parent: a child between fork and exec should do as little as
# possible. None off Linux, where ``up`` runs without these two safety nets.
_prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its own children. False where unsupported."""
    return _prctl is not None and _prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get ``sig`` when this process dies."""
    if _prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        _prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal comes.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # R, S, D, Z, ...
    ppid: int
    pgid: int
    start: int  # start time in clock ticks after boot: tells a reused pid apart


def proc_stat(pid: int) -> ProcStat | None:
    """The state, parent and process group of ``pid``; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may itself contain them.
    fields = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[19]))


def all_processes() -> list[ProcStat]:
    """Every process of the machine; none where there is no /proc."""
    stats = []
    try:
        entries = os.listdir("/proc")
    except FileNotFoundError:
        return stats
    for entry in entries:
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None:
                stats.append(stat)
    return stats


def descendants(root: int) -> list[ProcStat]:
    """Every live process below ``root`` in the parent tree."""
    by_parent: dict[int, list[ProcStat]] = {}
    for stat in all_processes():
        by_parent.setdefault(stat.ppid, []).append(stat)
    found, todo = [], [root]
    while todo:
        for stat in by_parent.get(todo.pop(), []):
            found.append(stat)
            todo.append(stat.pid)
    return found


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def reap(known: dict[int, int]) -> None:
    """Collect the exit status of the dead processes of ``known`` (pid -> start
    time) that were re-parented here, so none lingers as a zombie. Never any
    other child: whoever started it waits for it."""
    me = os.getpid()
    for pid, start in known.items():
        stat = proc_stat(pid)
        if stat and stat.ppid == me and stat.state == "Z" and stat.start == start:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def kill_leftovers(known: dict[int, int]) -> None:
    """SIGKILL whatever of ``known`` (pid -> start time) still runs, then reap it."""
    for pid, start in known.items():
        stat = proc_stat(pid)
        if stat and stat.state != "Z" and stat.start == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    me = os.getpid()
    for pid, start in known.items():
        stat = proc_stat(pid)
        if stat and stat.ppid == me and stat.start == start:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
