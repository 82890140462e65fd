"""Failed authentications per source address: a client that keeps guessing
passwords is refused without checking for a while.

A Basic password is checked with scrypt (tens of milliseconds of CPU by
design), so guessing would otherwise cost the ACS more than the guesser.
Checks wait for their turn on one thread and ask again when it comes, so a
guesser sending hundreds at once gets no more checked than one sending them
in turn.
Counting per address, not per username, means a guesser cannot lock a device
out by failing in its name; the limit is high enough that a few misconfigured
CPEs behind one carrier-grade NAT address do not lock out the others. An IPv6
client counts by its /64, which one subscriber gets whole.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass


@dataclass
class _Window:
    start: float
    failures: int = 0
    said: bool = False  # the refusal was logged


class FailureThrottle:
    def __init__(self, limit: int = 30, window_s: float = 60.0, max_sources: int = 100_000):
        self.limit = limit
        self.window_s = window_s
        self.max_sources = max_sources
        self._windows: dict[str, _Window] = {}

    def blocked(self, source: str) -> bool:
        """Whether ``source`` failed ``limit`` times in its current window. Safe
        to call from another thread (a check waiting for its turn asks again)."""
        window = self._windows.get(_key(source))
        if window is None or time.monotonic() - window.start >= self.window_s:
            return False
        return window.failures >= self.limit

    def first_refusal(self, source: str) -> bool:
        """For a blocked ``source``: True the first time in its window (log it then)."""
        window = self._windows.get(_key(source))
        if window is None or window.said:
            return False
        window.said = True
        return True

    def failed(self, source: str) -> None:
        now = time.monotonic()
        source = _key(source)
        window = self._windows.get(source)
        if window is None or now - window.start >= self.window_s:
            window = self._windows[source] = _Window(now)
            if len(self._windows) > self.max_sources:
                self._forget_old(now)
        window.failures += 1

    def _forget_old(self, now: float) -> None:
        self._windows = {
            source: window
            for source, window in self._windows.items()
            if now - window.start < self.window_s
        }
        if len(self._windows) > self.max_sources:  # all recent: keep the newest windows
            newest = sorted(self._windows.items(), key=lambda item: item[1].start)
            self._windows = dict(newest[-self.max_sources :])


def _key(source: str) -> str:
    """The address counted: an IPv6 address's /64, any other address itself."""
    if ":" not in source:
        return source
    try:
        return str(ipaddress.ip_network(f"{source}/64", strict=False))
    except ValueError:
        return source
