"""One terminal for many processes: each line goes out whole, with the time and
the name of the process that wrote it in front (``12:00:01 web    | ...``)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class LogOutput:
    """Writes prefixed lines; every write is one whole line, flushed at once."""

    def __init__(self, names: list[str], stream: TextIO | None = None) -> None:
        self.width = max(len(name) for name in names) if names else 0
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()  # migrations write from a thread

    def widen(self, name: str) -> None:
        self.width = max(self.width, len(name))

    def line(self, name: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        try:
            with self._lock:
                self.stream.write(f"{stamp} {name:<{self.width}} | {text}\n")
                self.stream.flush()
        except (OSError, ValueError):
            pass  # the terminal went away; the children must still be stopped


class LineSplitter:
    """Turns a child's byte stream into text lines (a partial last line waits
    for its end, or for ``flush`` when the stream closes)."""

    MAX_LINE = 64 * 1024  # a longer "line" is cut: one runaway write must not eat memory

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        self._pending += data
        *complete, self._pending = self._pending.split(b"\n")
        while len(self._pending) > self.MAX_LINE:
            complete.append(self._pending[: self.MAX_LINE])
            self._pending = self._pending[self.MAX_LINE :]
        return [_text(raw) for raw in complete]

    def flush(self) -> list[str]:
        rest, self._pending = self._pending, b""
        return [_text(rest)] if rest else []


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")
