"""WebSocket routes of the web process (run consoles, the USP WebSocket MTP)."""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from ide.consumers import RunConsoleConsumer

websocket_urlpatterns: list = [
    # The browser's session identifies the user of a run console.
    path("ws/runs/<uuid:run_id>/", AuthMiddlewareStack(RunConsoleConsumer.as_asgi())),
]
