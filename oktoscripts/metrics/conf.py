"""Settings of the metrics (README "Metrics").

- OKTOSCRIPTS_METRICS (on): off records no series and serves no endpoint;
- OKTOSCRIPTS_METRICS_PORT (none alone, 9460 and up under ``up``): this
  process's ``/metrics`` port (the web process serves it on its own port);
- OKTOSCRIPTS_METRICS_HOST (127.0.0.1): the address it listens on;
- OKTOSCRIPTS_METRICS_TOKEN (none): a scraper presenting
  ``Authorization: Bearer TOKEN`` may scrape from anywhere;
- OKTOSCRIPTS_METRICS_ALLOW (127.0.0.0/8,::1): networks that may scrape
  without the token (``none``: the token only).

Declared in oktoscripts/config.py's table. A worker, the ACS, the USP
controller and the scheduler read them at start, the web process for each
scrape.
"""

from __future__ import annotations

import ipaddress

from oktoscripts import config
from oktoscripts.config import ConfigError

DEFAULT_UP_PORT = 9460
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def enabled() -> bool:
    return config.value("OKTOSCRIPTS_METRICS")


def port() -> int | None:
    """The port of this process's endpoint; None: serve none."""
    raw = config.text("OKTOSCRIPTS_METRICS_PORT").lower()
    if not raw or raw == "off":
        return None
    return _port_number("OKTOSCRIPTS_METRICS_PORT", raw)


def up_base_port() -> int | None:
    """The first of the consecutive ports ``up`` gives its processes."""
    raw = config.text("OKTOSCRIPTS_METRICS_PORT").lower()
    if raw == "off" or not enabled():
        return None
    return _port_number("OKTOSCRIPTS_METRICS_PORT", raw) if raw else DEFAULT_UP_PORT


def host() -> str:
    return config.value("OKTOSCRIPTS_METRICS_HOST")


def token() -> str:
    return config.text("OKTOSCRIPTS_METRICS_TOKEN").strip()


def allowed_networks() -> tuple[Network, ...]:
    items = config.value("OKTOSCRIPTS_METRICS_ALLOW")
    if [item.lower() for item in items] == ["none"]:
        return ()
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                "OKTOSCRIPTS_METRICS_ALLOW",
                f"expected networks such as 10.0.0.0/8 separated by commas, got {item!r}",
            ) from None
    return tuple(networks)


def _port_number(name: str, raw: str) -> int:
    try:
        number = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected a port number or off, got {raw!r}") from None
    if not 0 <= number <= 65535:
        raise ConfigError(name, f"expected a port number 0-65535, got {raw!r}")
    return number
