"""Scripts, the domain at the heart of the platform: scripts and their immutable
versions, the platform settings with the run limits they resolve, the audit log,
and the one action that starts a run (``start.py``). Pages, REST and WebSocket
consumers (``ide``) and automations call this app; it never calls them."""
