"""The Status page (Admins): the platform's headline figures and the last ten
minutes of each, as every running process reports them over NATS
(oktoscripts/metrics/status.py). The same figures as ``/metrics``."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString, mark_safe

from ide.access import requires
from oktoscripts.bus import blocking
from oktoscripts.metrics import status
from oktoscripts.roles import Capability

log = logging.getLogger(__name__)

# (figure, label, chart, how the figure reads, how the chart reads)
CARDS = (
    ("runs_started", "Runs started", "runs_started", "total", "per second"),
    ("runs_failed", "Runs failed, limited or lost", "runs_failed", "total", "per second"),
    ("worker_runs_held", "Runs held by workers", "worker_runs_held", "now", "held"),
    ("worker_lua_threads_stuck", "Stuck Lua threads", "worker_lua_threads_stuck", "now", "stuck"),
    ("device_calls", "Device calls", "device_calls", "total", "per second"),
    ("device_call_errors", "Device calls not ok", "device_call_errors", "total", "per second"),
    ("device_call_ms", "Mean device call", None, "ms", ""),
    ("acs_informs", "Informs", "acs_informs", "total", "per second"),
    ("acs_sessions_open", "CWMP sessions open", "acs_sessions_open", "now", "open"),
    ("usp_messages", "USP messages", "usp_messages", "total", "per second"),
    ("devices_online_cwmp", "CWMP devices online", "devices_online_cwmp", "now", "online"),
    ("devices_online_usp", "USP devices online", "devices_online_usp", "now", "online"),
    ("event_lag_max", "Largest event stream lag", "event_lag_max", "events", "events"),
)
WIDTH, HEIGHT = 220, 44


def _reports() -> tuple[list[dict[str, Any]], str | None]:
    """Every process's report, this web process's own included."""
    mine = status.report("web", "web", [])
    try:
        return [mine, *blocking.call(status.gather)], None
    except Exception as exc:  # noqa: BLE001 - NATS away: say so, show what is here
        log.warning("status: cannot ask the processes: %s", exc)
        return [mine], f"the processes could not be asked over NATS: {exc}"


def sparkline(points: list[tuple[float, float]]) -> SafeString:
    """A small line chart of ``points`` (numbers only: nothing to escape)."""
    if len(points) < 2:
        return mark_safe(f'<svg class="spark" width="{WIDTH}" height="{HEIGHT}"></svg>')  # noqa: S308
    values = [v for _, v in points]
    top = max(values) or 1.0
    step = WIDTH / (len(points) - 1)
    path = " ".join(
        f"{i * step:.1f},{HEIGHT - 2 - (HEIGHT - 4) * v / top:.1f}" for i, v in enumerate(values)
    )
    return mark_safe(  # noqa: S308 - numbers only
        f'<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="last {len(points)} samples, peak {top:.3g}">'
        f'<polyline fill="none" stroke="#2459d6" stroke-width="1.5" points="{path}"/></svg>'
    )


def _cards(summary: dict[str, Any]) -> list[dict[str, Any]]:
    now = dict(summary["now"])
    count = now.get("device_call_seconds_count", 0)
    now["device_call_ms"] = 1000 * now.get("device_call_seconds_sum", 0) / count if count else 0
    cards = []
    for key, label, chart, unit, chart_unit in CARDS:
        points = summary["charts"].get(chart, []) if chart else []
        cards.append(
            {
                "key": key,
                "label": label,
                "value": now.get(key, 0),
                "unit": unit,
                "chart": sparkline(points) if chart else None,
                "chart_unit": chart_unit,
                "latest": points[-1][1] if points else None,
            }
        )
    return cards


@requires(Capability.ADMIN)
def status_page(request: HttpRequest) -> HttpResponse:
    reports, problem = _reports()
    summary = status.summarize(reports)
    return render(
        request,
        "ide/status.html",
        {
            "cards": _cards(summary),
            "processes": summary["processes"],
            "problem": problem,
            "step": int(status.STEP),
        },
    )
