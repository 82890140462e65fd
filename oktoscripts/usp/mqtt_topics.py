"""The TR-369 MQTT binding's topic rules, shared by the controller and the simulator.

MQTT 5: the sender's "reply to" topic travels in the PUBLISH Response Topic
property. MQTT 3.1.1 has no such property: the sender appends
``/reply-to=<its topic, with "/" written %2F>`` to the topic it publishes to,
so a receiver subscribes to ``<its topic>/#``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.bbf.usp.msg"
ERROR_CONTENT_TYPE = "application/vnd.bbf.usp.error"
REPLY_TO_MARK = "/reply-to="


def publish_topic_v311(destination: str, reply_to: str) -> str:
    return destination + REPLY_TO_MARK + reply_to.replace("/", "%2F")


def reply_to_from_topic(topic: str) -> str | None:
    """The reply-to topic carried in a 3.1.1 topic name, or None."""
    index = topic.rfind(REPLY_TO_MARK)
    if index < 0:
        return None
    return topic[index + len(REPLY_TO_MARK):].strip().replace("%2F", "/") or None


def subscription_filter(topic: str) -> str:
    """Matches ``topic`` itself and every 3.1.1 reply-to variant of it."""
    return topic.rstrip("/") + "/#"


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None


def broker_address(url: str) -> BrokerAddress:
    """``mqtt://user:pass@host:1883`` (tcp:// accepted too)."""
    parts = urlsplit(url.split(",")[0].strip())
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt://host:port)")
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 1883,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
