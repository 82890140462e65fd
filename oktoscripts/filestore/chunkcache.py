"""Stored files' chunks kept in memory by the process that serves them.

A rollout downloads one image to thousands of CPEs: reading its chunks from
MongoDB for each would cost the database a copy of the image per device. A
file's id is never reused (uploading under a name that exists makes a new
file), so a chunk read once is good for as long as it is kept; the least
recently used go first once the budget is full.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class ChunkCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.size = 0
        self._chunks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()  # filled from the database threads

    def get(self, file_id: str, n: int) -> bytes | None:
        with self._lock:
            data = self._chunks.get((file_id, n))
            if data is not None:
                self._chunks.move_to_end((file_id, n))
            return data

    def put(self, file_id: str, n: int, data: bytes) -> None:
        if len(data) > self.budget:
            return
        with self._lock:
            old = self._chunks.pop((file_id, n), None)
            self.size -= len(old) if old is not None else 0
            self._chunks[(file_id, n)] = data
            self.size += len(data)
            while self.size > self.budget:
                _, dropped = self._chunks.popitem(last=False)
                self.size -= len(dropped)
