"""Prometheus metrics of every platform process, and the Status page's feed.

- ``series``: every series the platform exports, and the calls that record them;
- ``conf``: the settings (on/off, ports, who may scrape);
- ``access``: the token / allowed-network check every ``/metrics`` answers with;
- ``endpoint``: the ``/metrics`` HTTP server of a process without a web server;
- ``collectors``: figures read when scraped (devices online, event stream lag);
- ``status``: each process's headline figures over NATS, for the Status page.
"""
