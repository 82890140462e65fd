"""The runs-over-time chart: a stacked bar chart drawn as inline SVG."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = {
    "succeeded": "#22a35a",
    "failed": "#d92d20",
    "limit_exceeded": "#e3a008",
    "cancelled": "#98a2b3",
    "lost": "#7a271a",
    "running": "#2e6ee6",
    "listening": "#6aa1ff",
    "queued": "#cfd6e2",
}
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 1360, 150, 34, 20, 8


def _label(when: Any, step: timedelta) -> str:
    local = timezone.localtime(when)
    return local.strftime("%H:%M") if step < timedelta(hours=12) else local.strftime("%m-%d")


def render(chart: dict[str, Any]) -> SafeString:
    buckets = chart["buckets"]
    n = len(buckets)
    totals = [sum(b.values()) for b in buckets]
    peak = max(totals) or 1
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    bar_w = plot_w / n
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" height="{HEIGHT}" role="img" '
        f'aria-label="runs over time by status" class="runs-chart">'
    ]
    for frac in (0, 0.5, 1):
        y = TOP + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f4"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="#8a94a6">{round(peak * frac)}</text>'
        )
    for i, bucket in enumerate(buckets):
        x = LEFT + i * bar_w + 1.5
        y = TOP + plot_h
        start = chart["start"] + chart["step"] * i
        title = [f"{_label(start, chart['step'])}: {totals[i]} run{'s' if totals[i] != 1 else ''}"]
        for status, count in bucket.items():
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 3, 1):.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[status]}"/>'
            )
            title.append(f"{status.replace('_', ' ')} {count}")
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP}" width="{max(bar_w - 3, 1):.1f}" '
            f'height="{plot_h}" fill="transparent"><title>{escape(", ".join(title))}'
            f"</title></rect>"
        )
        if i % max(1, n // 8) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - 5}" text-anchor="middle" '
                f'font-size="10" fill="#8a94a6">{_label(start, chart["step"])}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built from numbers and escaped text


def legend() -> list[tuple[str, str]]:
    return [(s.replace("_", " "), c) for s, c in COLOURS.items()]
