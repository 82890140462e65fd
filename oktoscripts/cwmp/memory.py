"""Giving memory back to the system after a burst of connections.

Each connection's buffers are freed when it closes, but glibc's allocator
keeps the freed pages of its heap for reuse: after a few hundred clients
(hostile ones included) the process would stay that much larger for good.
``Trimmer`` asks glibc (``malloc_trim``) to return free pages once a burst
has passed, at most every ``min_interval_s``; elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time

log = logging.getLogger(__name__)


def _malloc_trim() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


class Trimmer:
    """Counts closed connections and trims once ``burst`` of them have closed
    and none for ``quiet_s`` (the burst is over), or every ``min_interval_s``
    while they keep coming."""

    def __init__(self, burst: int = 50, quiet_s: float = 0.5, min_interval_s: float = 5.0) -> None:
        self.burst = burst
        self.quiet_s = quiet_s
        self.min_interval_s = min_interval_s
        self.closed = 0
        self._trim = _malloc_trim()
        self._last_trim = 0.0
        self._last_close = 0.0

    def connection_closed(self) -> None:
        self.closed += 1
        self._last_close = time.monotonic()

    def maybe_trim(self) -> bool:
        """Trim when due (see above); True if it did."""
        now = time.monotonic()
        if self._trim is None or self.closed < self.burst:
            return False
        if now - self._last_close < self.quiet_s and now - self._last_trim < self.min_interval_s:
            return False
        self.closed = 0
        self._last_trim = now
        self._trim(0)
        return True
