"""The Content-Security-Policy header of every page (README "Security").

Scripts come only from this site's own files: no inline <script>, no inline
event handler (onclick=...), no eval, nothing from elsewhere. So even a
stored value that slipped past escaping cannot run script in the browser of
whoever opens the page. Pages pass data to their JavaScript as JSON in
``<script type="application/json">`` (Django's ``json_script``), which is data
and never runs.

Styles may be inline (the templates' style attributes, the editor's own
injected styles): CSS cannot run script. Django 6 has this built in; on 5.2
it is this middleware.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",  # the REST API and the run console's WebSocket, same origin
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADER = "Content-Security-Policy"


def _add(response: HttpResponse) -> HttpResponse:
    if HEADER not in response:
        response[HEADER] = POLICY
    return response


@sync_and_async_middleware
def content_security_policy(get_response: Callable) -> Callable:
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            return _add(await get_response(request))

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            return _add(get_response(request))

    return middleware
