"""HTTP byte ranges (RFC 9110, 14): which part of a stored file a download asks for.

A CPE that lost its connection half-way through a large image may ask for the
rest only (``Range: bytes=<from>-``). One range is served; a request for
several gets the whole file (which RFC 9110 allows), as does a Range header
that is not a byte range.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(ValueError):
    """A range outside the file: answered 416."""


def requested(header: str, size: int) -> ByteRange | None:
    """The range ``header`` asks of a file of ``size`` bytes; None: the whole file."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:  # the last N bytes
            suffix = int(last)
            if suffix <= 0:
                raise Unsatisfiable(header)
            return ByteRange(max(0, size - suffix), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise Unsatisfiable(header)
    if end < start:
        return None
    return ByteRange(start, min(end, size - 1))
