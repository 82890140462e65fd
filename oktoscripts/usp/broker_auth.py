"""Logins to the embedded broker's MQTT listener, decided by the USP controller.

nats-server's MQTT listener has no notion of device credentials, and they
change at any time (``create_or_update_device_credential``). So the
embedded server delegates every MQTT login to this service (its "auth
callout", embedded/nats.py): it gets the client's username, password and
MQTT client identifier, and answers with a signed user whose permissions
are exactly the topics that client may use:

- an agent logs in with a device credential and its Endpoint ID as client
  identifier; the credential must be bound to that Endpoint ID. It may then
  publish to ``<controller topic>/<its eid>`` (and below: the MQTT 3.1.1
  reply-to form) and subscribe to ``<agent topic>/<its eid>`` (and below).
  No agent can publish in another's name or read another's messages, so the
  controller knows who sent a Record from the topic it came on;
- the controller logs in as ``usp-controller`` with the password of the
  broker's auth file; it may subscribe to its own topic and publish to the
  agents' topics;
- anything else (no credentials, a wrong password, a credential not bound
  to the claimed Endpoint ID, a client of the NATS port) is refused and
  logged with the claimed identity and the source address.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from pathlib import Path
from typing import Any

from oktoscripts.launcher.embedded.nats import ACCOUNT
from oktoscripts.launcher.embedded.natsauth import (
    PREFIX_USER,
    AccountKey,
    is_public_key,
    jwt_claims,
)
from oktoscripts.usp import mqtt_topics
from oktoscripts.usp.admission import check_credential
from oktoscripts.usp.controller import RateLimitedLog
from oktoscripts.usp.endpoint import endpoint_id_problem

log = logging.getLogger(__name__)

AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"


def load_auth_file(path: str | Path) -> dict[str, str]:
    """The embedded broker's auth file (embedded/nats.py), checked."""
    data = json.loads(Path(path).read_text())
    for key in ("nats_url", "issuer_seed", "controller_user", "controller_password"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{path}: no {key}")
    return data


def _topic_permissions(publish: list[str], subscribe: list[str]) -> dict[str, Any]:
    """NATS permissions for MQTT topics: each topic and everything below it."""

    def subjects(topics: list[str]) -> list[str]:
        out = []
        for topic in topics:
            subject = mqtt_topics.nats_subject(topic)
            out += [subject, subject + ".>"]
        return out

    return {"pub": {"allow": subjects(publish)}, "sub": {"allow": subjects(subscribe)}}


class BrokerAuthService:
    def __init__(
        self, auth: dict[str, str], *, credentials: Any, controller_topic: str, agent_topic: str
    ) -> None:
        self.auth = auth
        self.issuer = AccountKey.from_seed(auth["issuer_seed"])
        self.credentials = credentials
        self.controller_topic = controller_topic
        self.agent_topic = agent_topic
        self.refusals = RateLimitedLog()
        self.nc: Any = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        import nats

        self.nc = await nats.connect(
            self.auth["nats_url"], name="usp-broker-auth", max_reconnect_attempts=-1
        )
        await self.nc.subscribe(AUTH_SUBJECT, cb=self._on_request)
        await self.nc.flush()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.nc is not None:
            await self.nc.close()

    async def _on_request(self, msg: Any) -> None:
        # One login at a time would queue every agent behind a slow password check.
        task = asyncio.get_running_loop().create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Any) -> None:
        try:
            request = jwt_claims(msg.data.decode())["nats"]
            user_nkey, server_id = request["user_nkey"], request["server_id"]["id"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            log.warning("usp broker auth: unreadable request: %s", exc)
            return
        if not is_public_key(user_nkey, PREFIX_USER):
            log.warning("usp broker auth: request without a user key")
            return
        try:
            grant, reason = await asyncio.to_thread(self.decide, request)
        except Exception:
            log.exception("usp broker auth: deciding a login failed")
            grant, reason = None, "internal error"
        answer: dict[str, Any] = {"type": "authorization_response", "version": 2}
        if grant is None:
            client = request.get("client_info") or {}
            self.refusals.warning(
                str(client.get("host")),
                "usp mqtt: refused a login as %r claiming %r from %s: %s",
                (request.get("connect_opts") or {}).get("user"),
                client.get("mqtt_id"),
                client.get("host"),
                reason,
            )
            answer["error"] = "not authorized"
        else:
            answer["jwt"] = self.issuer.sign_jwt(
                {
                    "sub": user_nkey,
                    "aud": ACCOUNT,
                    "name": grant.pop("name"),
                    "nats": {
                        **grant,
                        "subs": -1,
                        "data": -1,
                        "payload": -1,
                        "type": "user",
                        "version": 2,
                        "allowed_connection_types": ["MQTT"],
                    },
                }
            )
        response = self.issuer.sign_jwt({"sub": user_nkey, "aud": server_id, "nats": answer})
        await msg.respond(response.encode())

    def decide(self, request: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """(permissions and name, "") for a login to let in, (None, why) otherwise.
        Blocking: it may check a password hash."""
        client = request.get("client_info") or {}
        options = request.get("connect_opts") or {}
        username, password = options.get("user") or "", options.get("pass") or ""
        eid = client.get("mqtt_id") or ""
        if client.get("type") != "mqtt":
            return None, "only MQTT clients log in with device credentials"
        if not username or not password:
            return None, "no credentials"
        if username == self.auth["controller_user"]:
            expected = self.auth["controller_password"].encode()
            if not hmac.compare_digest(password.encode(), expected):
                return None, "wrong controller password"
            grant = _topic_permissions([self.agent_topic], [self.controller_topic])
            return {**grant, "name": username}, ""
        problem = endpoint_id_problem(eid)
        if problem:
            return None, f"the MQTT client identifier must be the agent's Endpoint ID ({problem})"
        outcome = check_credential(self.credentials, username, password, eid)
        if outcome == "bad-password":
            return None, "bad credentials"
        if outcome == "not-bound":
            return None, "the credential is not bound to this Endpoint ID"
        grant = _topic_permissions(
            [mqtt_topics.agent_publish_topic(self.controller_topic, eid)],
            [mqtt_topics.agent_topic(self.agent_topic, eid)],
        )
        return {**grant, "name": username}, ""
