"""A small in-memory cache whose entries expire, for lookups on every session
(credentials, connection-request details) that change rarely."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

_MISSING = object()


class TtlCache:
    def __init__(self, ttl_s: float, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any, default: Any = _MISSING) -> Any:
        entry = self._data.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._data.pop(key, None)
            return None if default is _MISSING else default
        return entry[1]

    def __contains__(self, key: Any) -> bool:
        absent = object()
        return self.get(key, absent) is not absent

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = (time.monotonic() + self.ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def discard(self, key: Any) -> None:
        self._data.pop(key, None)
