"""Reading a real process's ``/metrics`` the way Prometheus does."""

from __future__ import annotations

import http.client
import socket

from prometheus_client.parser import text_string_to_metric_families


def get(
    port: int,
    token: str | None = None,
    source: str | None = None,
    host: str = "127.0.0.1",
    path: str = "/metrics",
) -> tuple[int, str]:
    """Status and body of a GET, from the ``source`` address when given."""
    connection = http.client.HTTPConnection(
        host, port, timeout=10, source_address=(source, 0) if source else None
    )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of an exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def value(found: dict, name: str, **labels: str) -> float:
    """The sample's value, 0 when absent (a labelled series appears once recorded)."""
    return found.get((name, frozenset(labels.items())), 0.0)


def total(found: dict, name: str, **labels: str) -> float:
    """Sum over the samples of ``name`` that have ``labels`` (among others)."""
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls))


def loopback_alias_works(address: str = "127.0.0.2") -> bool:
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False
