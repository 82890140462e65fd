"""The TR-369 MQTT binding's topic rules, shared by the controller and the simulator.

MQTT 5: the sender's "reply to" topic travels in the PUBLISH Response Topic
property. MQTT 3.1.1 has no such property: the sender appends
``/reply-to=<its topic, with "/" written %2F>`` to the topic it publishes to,
so a receiver subscribes to ``<its topic>/#``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, unquote, urlsplit

CONTENT_TYPE = "application/vnd.bbf.usp.msg"
ERROR_CONTENT_TYPE = "application/vnd.bbf.usp.error"
REPLY_TO_MARK = "/reply-to="
PLAIN_SCHEMES = ("mqtt", "tcp")
TLS_SCHEMES = ("mqtts",)


def publish_topic_v311(destination: str, reply_to: str) -> str:
    return destination + REPLY_TO_MARK + reply_to.replace("/", "%2F")


def reply_to_from_topic(topic: str) -> str | None:
    """The reply-to topic carried in a 3.1.1 topic name, or None."""
    index = topic.rfind(REPLY_TO_MARK)
    if index < 0:
        return None
    return topic[index + len(REPLY_TO_MARK) :].strip().replace("%2F", "/") or None


def subscription_filter(topic: str) -> str:
    """Matches ``topic`` itself and every 3.1.1 reply-to variant of it."""
    return topic.rstrip("/") + "/#"


# ---- one topic per agent ------------------------------------------------------------------
#
# An agent publishes to ``<controller topic>/<its Endpoint ID>`` and listens on
# ``<agent topic>/<its Endpoint ID>``: a broker can then let each agent publish
# and subscribe in its own name only (Mosquitto ACLs, the embedded broker's
# login service), and the controller knows who published a Record from the
# topic it arrived on. Endpoint IDs hold no "/", "+" nor "#" (endpoint.py).


def agent_publish_topic(controller_topic: str, endpoint_id: str) -> str:
    """Where the agent ``endpoint_id`` sends its Records to the controller."""
    return f"{controller_topic.rstrip('/')}/{endpoint_id}"


def agent_topic(agent_base: str, endpoint_id: str) -> str:
    """Where the agent ``endpoint_id`` receives the controller's Records."""
    return f"{agent_base.rstrip('/')}/{endpoint_id}"


def publisher_of(topic: str, controller_topic: str) -> str | None:
    """The Endpoint ID whose own topic ``topic`` is (a publish received on the
    controller's subscription), or None for the controller topic itself."""
    base = controller_topic.rstrip("/") + "/"
    if not topic.startswith(base):
        return None
    level = topic[len(base) :].split("/", 1)[0]
    return None if not level or level.startswith(REPLY_TO_MARK[1:]) else level


def topic_problem(topic: str) -> str | None:
    """None for a topic the controller can own, else what is wrong with it."""
    levels = topic.split("/")
    if not topic or any(not level for level in levels):
        return "a topic like usp/controller: no empty level, no leading or trailing /"
    if any(c in topic for c in "+#*> \t"):
        return "no wildcard (+ # * >) and no space in a topic"
    return None


def nats_subject(topic: str) -> str:
    """The NATS subject nats-server maps an MQTT topic to ("/" -> ".", "." -> "//"),
    for topics without empty levels (``topic_problem``)."""
    return ".".join(level.replace(".", "//") for level in topic.split("/"))


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool = False

    def without_credentials(self) -> BrokerAddress:
        return replace(self, username=None, password=None)


def broker_address(url: str) -> BrokerAddress:
    """``mqtt://user:pass@host:1883`` (tcp:// accepted too), or over TLS
    ``mqtts://user:pass@host:8883``."""
    parts = urlsplit(url.split(",")[0].strip())
    tls = parts.scheme in TLS_SCHEMES
    if parts.scheme not in PLAIN_SCHEMES + TLS_SCHEMES:
        raise ValueError(
            f"unsupported MQTT URL scheme {parts.scheme!r} "
            "(use mqtt://host:port or mqtts://host:port)"
        )
    return BrokerAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def broker_url(address: BrokerAddress) -> str:
    """The URL of ``address`` (its credentials included)."""
    scheme = "mqtts" if address.tls else "mqtt"
    auth = ""
    if address.username is not None:
        auth = quote(address.username, safe="")
        if address.password is not None:
            auth += ":" + quote(address.password, safe="")
        auth += "@"
    return f"{scheme}://{auth}{address.host}:{address.port}"
