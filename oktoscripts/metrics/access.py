"""Who may read ``/metrics``: a client from an allowed network, or one
presenting the token. The same rule for every process's endpoint."""

from __future__ import annotations

import hmac
import ipaddress

from oktoscripts.metrics import conf


def allowed(remote_addr: str | None, authorization: str | None) -> int:
    """200 when the scrape may go on; 401 (a token is configured and was not
    given or was wrong) or 403 (no token configured, network not allowed)."""
    expected = conf.token()
    if expected and authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            return 200
    if _in_allowed_network(remote_addr):
        return 200
    return 401 if expected else 403


def _in_allowed_network(remote_addr: str | None) -> bool:
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in conf.allowed_networks())


def refusal_text(status: int) -> str:
    if status == 401:
        return "metrics: present the token (Authorization: Bearer ...)\n"
    return "metrics: this address may not scrape (OKTOSCRIPTS_METRICS_ALLOW)\n"
