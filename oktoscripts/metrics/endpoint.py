"""``/metrics`` of a process that has no web server (worker, ACS, USP
controller, scheduler): a small HTTP server on a thread of its own, so a
scrape never waits for the process's event loop, nor the loop for a scrape."""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

from oktoscripts.config import ConfigError
from oktoscripts.metrics import access, conf

log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """A scrape every 15 s is not worth a log line."""


def exposition(accept: str, registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The registry in the format the scraper asked for (Prometheus text, or
    OpenMetrics); not compressed: scrapes are small and CPU is what counts here."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def metrics_app(registry: CollectorRegistry = REGISTRY):  # noqa: ANN201 - a WSGI app
    def app(environ: dict, start_response) -> list[bytes]:  # noqa: ANN001
        if environ.get("PATH_INFO", "/") not in ("/metrics", "/metrics/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: the metrics are at /metrics\n"]
        status = access.allowed(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"))
        if status != 200:
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            if status == 401:
                headers.append(("WWW-Authenticate", 'Bearer realm="metrics"'))
            start_response(f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}", headers)
            return [access.refusal_text(status).encode()]
        body, content_type = exposition(environ.get("HTTP_ACCEPT", ""), registry)
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    return app


class MetricsEndpoint:
    """The endpoint of this process, on OKTOSCRIPTS_METRICS_PORT (none when unset)."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.port: int | None = None
        self._server: _Server | None = None

    def start(self) -> int | None:
        """The port served, or None. A port that cannot be used is an error in
        the log, and the process goes on without metrics."""
        try:
            wanted = conf.port() if conf.enabled() else None
            conf.allowed_networks()  # a malformed setting is reported now, not per scrape
        except ConfigError as exc:
            log.error("%s: no /metrics: %s", self.process, exc)
            return None
        if wanted is None:
            return None
        try:
            self._server = make_server(conf.host(), wanted, metrics_app(), _Server, _QuietHandler)
        except OSError as exc:
            log.error(
                "%s: no /metrics: cannot listen on %s:%s (OKTOSCRIPTS_METRICS_PORT): %s",
                self.process,
                conf.host(),
                wanted,
                exc,
            )
            return None
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True).start()
        log.info("%s: metrics at http://%s:%d/metrics", self.process, conf.host(), self.port)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
