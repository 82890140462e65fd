"""WebSocket routes of the web process (run consoles, the USP WebSocket MTP)."""

websocket_urlpatterns: list = []
