"""Side-by-side diff rows of two texts, for the version diff page."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


@dataclass
class Row:
    kind: str  # "same" | "change" | "delete" | "insert" | "skip"
    left_no: int | None = None
    left: SafeString | str = ""
    right_no: int | None = None
    right: SafeString | str = ""
    skipped: int = 0


def _intraline(a: str, b: str) -> tuple[SafeString, SafeString]:
    """Mark the changed characters of two similar lines with <del>/<ins>
    (lines that share little are shown whole: marking scattered letters helps no one)."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() < 0.5:
        return mark_safe(escape(a)), mark_safe(escape(b))  # noqa: S308 - escaped
    left, right = [], []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            left.append(escape(a[i1:i2]))
            right.append(escape(b[j1:j2]))
        else:
            if i2 > i1:
                left.append(f"<del>{escape(a[i1:i2])}</del>")
            if j2 > j1:
                right.append(f"<ins>{escape(b[j1:j2])}</ins>")
    return mark_safe("".join(left)), mark_safe("".join(right))  # noqa: S308 - escaped above


def side_by_side(old: str, new: str, context: int = 4) -> list[Row]:
    """Rows for a two-column diff; unchanged runs longer than 2*context are folded."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[Row] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            count = i2 - i1
            first, last = (i1 == 0), (i2 == len(a))
            keep_head = 0 if first else context
            keep_tail = 0 if last else context
            if count > keep_head + keep_tail + 2:
                for k in range(keep_head):
                    rows.append(Row("same", i1 + k + 1, a[i1 + k], j1 + k + 1, b[j1 + k]))
                rows.append(Row("skip", skipped=count - keep_head - keep_tail))
                for k in range(count - keep_tail, count):
                    rows.append(Row("same", i1 + k + 1, a[i1 + k], j1 + k + 1, b[j1 + k]))
            else:
                for k in range(count):
                    rows.append(Row("same", i1 + k + 1, a[i1 + k], j1 + k + 1, b[j1 + k]))
        elif op == "replace":
            for k in range(max(i2 - i1, j2 - j1)):
                li, rj = i1 + k, j1 + k
                has_l, has_r = li < i2, rj < j2
                if has_l and has_r:
                    left, right = _intraline(a[li], b[rj])
                    rows.append(Row("change", li + 1, left, rj + 1, right))
                elif has_l:
                    rows.append(Row("delete", li + 1, a[li], None, ""))
                else:
                    rows.append(Row("insert", None, "", rj + 1, b[rj]))
        elif op == "delete":
            for k in range(i1, i2):
                rows.append(Row("delete", k + 1, a[k], None, ""))
        else:
            for k in range(j1, j2):
                rows.append(Row("insert", None, "", k + 1, b[k]))
    return rows


def stats(rows: list[Row]) -> dict[str, int]:
    added = sum(1 for r in rows if r.kind in ("insert", "change"))
    removed = sum(1 for r in rows if r.kind in ("delete", "change"))
    return {"added": added, "removed": removed}
