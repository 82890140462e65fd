"""Onboarding CPEs that leave the factory with a shared or empty ACS password
(``OKTOSCRIPTS_ACS_AUTH=onboard``).

Such a CPE proves nothing about who it is, so its factory credential
(``OKTOSCRIPTS_ACS_ONBOARD_CREDENTIALS``) is good for one thing only: the
first sessions of a DeviceId that has no credential of its own yet. In the
first session the ACS gives it one (SetParameterValues of
ManagementServer.Username and .Password: the TR-069 username
``OUI-SerialNumber`` and a random password, stored as a device credential
before the session ends). From then on the factory credential is refused for
that DeviceId; a CPE that keeps presenting it is logged and the refusal is
recorded on its device record (``cwmp.onboarding``), shown on its page.
"""

from __future__ import annotations

import hmac
import secrets

from oktoscripts.cwmp.httpauth import check_digest, ha1
from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.devices.identifiers import tr069_usernames

# ``ConnectionState.user`` of a CPE admitted with a factory credential: never a
# stored credential's username (those are never empty nor start with NUL).
FACTORY_USER = "\0factory"
ACS_CREDENTIAL = "ACS credential"  # the provisioning step's purpose


def parse_credentials(value: str) -> tuple[tuple[str, str], ...]:
    """``user:password,user2:password2`` -> pairs; ``:`` is the empty credential
    (which also admits a CPE that sends no Authorization again after a 401 on
    the same connection)."""
    pairs = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if ":" not in item:
            raise ValueError(f"expected user:password, got {item!r}")
        username, _, password = item.partition(":")
        pairs.append((username, password))
    return tuple(pairs) or (("", ""),)


class FactoryCredentials:
    """The shared credentials CPEs may present before they have their own."""

    def __init__(self, pairs: tuple[tuple[str, str], ...], realm: str) -> None:
        self.pairs = pairs
        self._ha1 = [(u, ha1(u, realm, p)) for u, p in pairs]

    def admits_no_credentials(self) -> bool:
        return ("", "") in self.pairs

    def usernames(self) -> set[str]:
        return {u for u, _ in self.pairs}

    def basic(self, username: str, password: str) -> bool:
        return any(
            hmac.compare_digest(username.encode(), u.encode())
            & hmac.compare_digest(password.encode(), p.encode())
            for u, p in self.pairs
        )

    def digest(self, params: dict[str, str], method: str) -> bool:
        username = params.get("username", "")
        return any(u == username and check_digest(params, method, h) for u, h in self._ha1)


def own_credential(oui: str, serial: str) -> tuple[str, str]:
    """The credential a CPE is given: its TR-069 username (which the ACS lets speak
    for that DeviceId only) and a new random password."""
    return tr069_usernames(oui, "", serial)[1], secrets.token_urlsafe(18)


def credential_request(root: str, username: str, password: str) -> RpcRequest:
    return RpcRequest(
        "SetParameterValues",
        values=[
            (root + "ManagementServer.Username", username, "string"),
            (root + "ManagementServer.Password", password, "string"),
        ],
        parameter_key="oktoscripts-onboard",
    )
