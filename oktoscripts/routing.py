"""WebSocket routes of the web process: run consoles and the debugger."""

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from ide.consumers import RunConsoleConsumer
from ide.debugging import DebugConsumer


class NoSuchRoute(AsyncWebsocketConsumer):
    """Any other path: the handshake is refused (403). Without it Channels'
    router raised for the path and the web process answered 500 and logged a
    traceback for every such request, which any client could send."""

    async def connect(self) -> None:
        await self.close()


websocket_urlpatterns: list = [
    # The browser's session identifies the user of a run console.
    path("ws/runs/<uuid:run_id>/", AuthMiddlewareStack(RunConsoleConsumer.as_asgi())),
    # The debugger of a debug run (ide/debugging.py).
    path("ws/runs/<uuid:run_id>/debug/", AuthMiddlewareStack(DebugConsumer.as_asgi())),
    re_path(r"", NoSuchRoute.as_asgi()),
]
