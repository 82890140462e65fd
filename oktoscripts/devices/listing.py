"""Reading every device at once (get_all_devices), as fast as the database allows.

A listing of 10,000 devices is ~7 MB of BSON that becomes ~300,000 Python
objects; on the embedded server, the read is mostly its own Python work. So:

- no ``sort`` in the query: the embedded server sorts the decoded documents
  in Python (a quarter of its time for a listing) even on ``_id``, while
  sorting 10,000 serials here takes a millisecond. Serials are strings, and
  Python orders strings by code point, which is MongoDB's order of UTF-8
  strings (without a collation, as the devices collection has none);
- no projection: the embedded server projects in Python too, which costs it
  more than sending the whole (small) documents;
- naive datetimes (UTC): pymongo's ``tz_aware`` decoding costs a third of
  the client's decoding, and a device table only formats one date as text;
- the cyclic garbage collector paused meanwhile: the ~20,000 containers
  that stay alive (the device tables) trigger collections of the whole heap
  that find nothing to free (reference counting still frees what dies):
  measured, 10-30 ms of the ~120 ms this process spends on a listing of
  10,000, more the larger the process's heap.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from operator import itemgetter
from typing import Any

from pymongo.collection import Collection

# Documents per reply: a few round trips for a large fleet, replies of a few MB.
BATCH = 5000

_gc_lock = threading.Lock()
_gc_pausers = 0  # listings in progress that paused the collector


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for the block: back on when the last of
    overlapping blocks ends, unless it was already off before the first."""
    global _gc_pausers
    with _gc_lock:
        ours = _gc_pausers > 0 or gc.isenabled()
        if ours:
            _gc_pausers += 1
            gc.disable()
    try:
        yield
    finally:
        if ours:
            with _gc_lock:
                _gc_pausers -= 1
                if _gc_pausers == 0:
                    gc.enable()


def read_all(
    collection: Collection, make: Callable[[dict], dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    """``make(doc)`` of every document (datetimes naive UTC), sorted by ``key``
    of the result."""
    naive = collection.with_options(
        codec_options=collection.codec_options.with_options(tz_aware=False, tzinfo=None)
    )
    with gc_paused():
        out = [make(doc) for doc in naive.find({}, batch_size=BATCH)]
    out.sort(key=itemgetter(key))
    return out
