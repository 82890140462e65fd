"""Single sign-on settings, read from the environment (README "Single sign-on").

OpenID Connect is on when ``OKTOSCRIPTS_OIDC_ISSUER`` is set, LDAP when
``OKTOSCRIPTS_LDAP_URI`` is set. A setting that cannot work stops the process
with a ConfigError naming it, as every other setting does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oktoscripts import config
from oktoscripts.config import ConfigError
from oktoscripts.roles import ROLES

OIDC_BACKEND = "oktoscripts.accounts.oidc.OIDCBackend"
LDAP_BACKEND = "oktoscripts.accounts.ldap.LDAPBackend"

LDAP_GROUP_TYPES = {
    "groupOfNames": "GroupOfNamesType",
    "groupOfUniqueNames": "GroupOfUniqueNamesType",
    "posixGroup": "PosixGroupType",
    "activeDirectory": "ActiveDirectoryGroupType",
    "nestedActiveDirectory": "NestedActiveDirectoryGroupType",
}


def parse_role_map(setting: str, text: str) -> dict[str, str]:
    """``value=Role`` entries separated by ``;`` or new lines -> {value: Role}.

    Each entry is split at its last ``=``, so LDAP DNs (``cn=ops,ou=groups,...``)
    need no quoting; values are compared without regard to case.
    """
    mapping: dict[str, str] = {}
    for entry in text.replace("\n", ";").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        value, sep, role = entry.rpartition("=")
        value, role = value.strip(), role.strip()
        if not sep or not value:
            raise ConfigError(setting, f"expected value=Role, got {entry!r}")
        if role not in ROLES:
            raise ConfigError(setting, f"{role!r} is not a role (one of {', '.join(ROLES)})")
        mapping[value.casefold()] = role
    if not mapping:
        raise ConfigError(setting, "no group is mapped to a role: nobody could sign in")
    return mapping


@dataclass(frozen=True)
class OIDCConfig:
    """An OpenID Provider and how its claims become a username and a role."""

    issuer: str
    client_id: str
    client_secret: str
    roles: dict[str, str]
    scopes: str = "openid profile email"
    groups_claim: str = "groups"
    username_claim: str = "preferred_username"
    label: str = "single sign-on"
    sign_algo: str = "RS256"
    verify_tls: bool = True
    timeout_s: float = 10.0

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class LDAPConfig:
    """A directory server, where its users are, and how their groups become a role."""

    uri: str
    user_base: str
    group_base: str
    roles: dict[str, str]
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    user_filter: str = "(uid=%(user)s)"
    group_type: str = "groupOfNames"
    start_tls: bool = False


def _get(name: str, default: str = "") -> str:
    return config.text(name) or default


def _required(name: str, because: str) -> str:
    value = _get(name)
    if not value:
        raise ConfigError(name, f"required when {because} is set")
    return value


def _roles(name: str, because: str) -> dict[str, str]:
    return parse_role_map(name, _required(name, because))


def _http_url(name: str, value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ConfigError(name, f"expected an https:// URL, got {value!r}")
    return value.rstrip("/")


def oidc_from_env() -> OIDCConfig | None:
    """The OpenID Connect settings, or None when ``OKTOSCRIPTS_OIDC_ISSUER`` is unset."""
    issuer = _get("OKTOSCRIPTS_OIDC_ISSUER")
    if not issuer:
        return None
    on = "OKTOSCRIPTS_OIDC_ISSUER"
    scopes = _get("OKTOSCRIPTS_OIDC_SCOPES", OIDCConfig.scopes)
    if "openid" not in scopes.split():
        raise ConfigError("OKTOSCRIPTS_OIDC_SCOPES", f"must include openid, got {scopes!r}")
    try:
        timeout = float(_get("OKTOSCRIPTS_OIDC_TIMEOUT", "10"))
    except ValueError as exc:
        raise ConfigError("OKTOSCRIPTS_OIDC_TIMEOUT", "expected seconds") from exc
    return OIDCConfig(
        issuer=_http_url(on, issuer),
        client_id=_required("OKTOSCRIPTS_OIDC_CLIENT_ID", on),
        client_secret=_required("OKTOSCRIPTS_OIDC_CLIENT_SECRET", on),
        roles=_roles("OKTOSCRIPTS_OIDC_ROLES", on),
        scopes=scopes,
        groups_claim=_get("OKTOSCRIPTS_OIDC_GROUPS_CLAIM", OIDCConfig.groups_claim),
        username_claim=_get("OKTOSCRIPTS_OIDC_USERNAME_CLAIM", OIDCConfig.username_claim),
        label=_get("OKTOSCRIPTS_OIDC_LABEL", OIDCConfig.label),
        sign_algo=_get("OKTOSCRIPTS_OIDC_SIGN_ALGO", OIDCConfig.sign_algo),
        verify_tls=config.value("OKTOSCRIPTS_OIDC_VERIFY_TLS"),
        timeout_s=timeout,
    )


def ldap_from_env() -> LDAPConfig | None:
    """The LDAP settings, or None when ``OKTOSCRIPTS_LDAP_URI`` is unset."""
    uri = _get("OKTOSCRIPTS_LDAP_URI")
    if not uri:
        return None
    on = "OKTOSCRIPTS_LDAP_URI"
    if not uri.startswith(("ldap://", "ldaps://", "ldapi://")):
        raise ConfigError(on, f"expected an ldap:// or ldaps:// URI, got {uri!r}")
    group_type = _get("OKTOSCRIPTS_LDAP_GROUP_TYPE", LDAPConfig.group_type)
    if group_type not in LDAP_GROUP_TYPES:
        raise ConfigError(
            "OKTOSCRIPTS_LDAP_GROUP_TYPE",
            f"expected one of {', '.join(LDAP_GROUP_TYPES)}, got {group_type!r}",
        )
    user_filter = _get("OKTOSCRIPTS_LDAP_USER_FILTER", LDAPConfig.user_filter)
    if "%(user)s" not in user_filter:
        raise ConfigError(
            "OKTOSCRIPTS_LDAP_USER_FILTER",
            f"must contain %(user)s where the username goes, got {user_filter!r}",
        )
    try:
        import django_auth_ldap  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            on,
            "LDAP sign-in needs django-auth-ldap and python-ldap: pip "
            "install 'oktoscripts[ldap]' (README \"Single sign-on\")",
        ) from exc
    return LDAPConfig(
        uri=uri,
        user_base=_required("OKTOSCRIPTS_LDAP_USER_BASE", on),
        group_base=_required("OKTOSCRIPTS_LDAP_GROUP_BASE", on),
        roles=_roles("OKTOSCRIPTS_LDAP_ROLES", on),
        bind_dn=_get("OKTOSCRIPTS_LDAP_BIND_DN"),
        bind_password=config.value("OKTOSCRIPTS_LDAP_BIND_PASSWORD"),
        user_filter=user_filter,
        group_type=group_type,
        start_tls=config.value("OKTOSCRIPTS_LDAP_START_TLS"),
    )


def backends(oidc: OIDCConfig | None, ldap: LDAPConfig | None) -> list[str]:
    """The authentication backends single sign-on adds after the local accounts'."""
    return [path for path, on in ((LDAP_BACKEND, ldap), (OIDC_BACKEND, oidc)) if on]
