"""Every NATS subject and JetStream stream name of the platform, in one place.

All names start with a prefix (``OKTOSCRIPTS_BUS_PREFIX``, default ``okto``)
so that several installations, or test sessions, can share one NATS server.
"""

from __future__ import annotations

import os


def prefix() -> str:
    return os.environ.get("OKTOSCRIPTS_BUS_PREFIX", "okto")


def stream_name(kind: str) -> str:
    """A JetStream stream name (no dots allowed there)."""
    return f"{prefix()}_{kind}".upper().replace(".", "_").replace("-", "_")


def subject(*parts: str) -> str:
    """``okto.<part>.<part>...``"""
    return ".".join((prefix(), *parts))
