"""``/metrics`` of the web process, on its own port (no sign-in: the token or
an allowed network, as every process's endpoint)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from oktoscripts.config import ConfigError
from oktoscripts.metrics import access, conf
from oktoscripts.metrics.endpoint import exposition


def metrics(request: HttpRequest) -> HttpResponse:
    if not conf.enabled():
        return HttpResponse(
            "metrics are off (OKTOSCRIPTS_METRICS)\n", status=404, content_type="text/plain"
        )
    try:
        status = access.allowed(
            request.META.get("REMOTE_ADDR"), request.META.get("HTTP_AUTHORIZATION")
        )
    except ConfigError as exc:
        return HttpResponse(f"{exc}\n", status=500, content_type="text/plain")
    if status != 200:
        response = HttpResponse(
            access.refusal_text(status), status=status, content_type="text/plain; charset=utf-8"
        )
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = exposition(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(body, content_type=content_type)
