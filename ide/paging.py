"""Reading a page number from a query string (offset paging of short lists)."""

from __future__ import annotations

from typing import Any

MAX_PAGE = 100_000


def page_number(query: Any) -> int:
    """``?page=N`` as a positive integer; 1 for anything else."""
    raw = query.get("page", "")
    return min(int(raw), MAX_PAGE) if raw.isdigit() and int(raw) > 0 else 1
