"""WebSocket routes of the web process (run consoles, the USP WebSocket MTP)."""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from ide.consumers import RunConsoleConsumer
from ide.debugging import DebugConsumer

websocket_urlpatterns: list = [
    # The browser's session identifies the user of a run console.
    path("ws/runs/<uuid:run_id>/", AuthMiddlewareStack(RunConsoleConsumer.as_asgi())),
    # The debugger of a debug run (ide/debugging.py).
    path("ws/runs/<uuid:run_id>/debug/", AuthMiddlewareStack(DebugConsumer.as_asgi())),
]
