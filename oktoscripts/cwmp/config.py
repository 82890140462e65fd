"""The ACS's settings (OKTOSCRIPTS_ACS_*), from Django settings or the environment.

Each is declared, with its default and meaning, in oktoscripts/config.py and
documented in the README ("TR-069 (CWMP)"); here they are checked and turned
into an AcsConfig.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from oktoscripts import config
from oktoscripts.config import ConfigError


def _value(name: str) -> str:
    """The Django setting (name without OKTOSCRIPTS_), else the environment, else
    the default of oktoscripts/config.py."""
    try:
        from django.conf import settings

        configured = getattr(settings, name.removeprefix("OKTOSCRIPTS_"), None)
    except Exception:  # Django not configured: environment only
        configured = None
    if configured is not None:
        return str(configured)
    return config.text(name) or str(config.variable(name).default)


def _choice(name: str, choices: tuple[str, ...]) -> str:
    value = _value(name).lower()
    if value not in choices:
        raise ConfigError(name, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


def _port(name: str) -> int | None:
    raw = _value(name)
    if raw.lower() == "off":
        return None
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError(name, f"expected a port number or off, got {raw!r}")
    return int(raw)


def _file(name: str) -> str | None:
    raw = _value(name)
    if raw and not os.path.isfile(raw):
        raise ConfigError(name, f"no such file: {raw}")
    return raw or None


def _number(name: str) -> float:
    raw = _value(name)
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, f"expected a number, got {raw!r}") from None


def _credentials(name: str) -> tuple[tuple[str, str], ...]:
    from oktoscripts.cwmp.onboarding import parse_credentials

    try:
        return parse_credentials(_value(name))
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None


@dataclass(frozen=True)
class AcsConfig:
    host: str = "0.0.0.0"
    port: int | None = 7547  # plain HTTP (None: no listener; 0: any free port)
    tls_port: int | None = None  # HTTPS (from_settings: 7548)
    tls_cert: str | None = None  # None: the platform's certificate (pki.tls_files)
    tls_key: str | None = None
    cr_ca: str | None = None  # more CAs for https:// Connection Request URLs
    path: str = "/"
    session_timeout: float = 30.0
    max_body: int = 1024 * 1024
    auth: str = "required"  # "required" | "onboard" | "off"
    onboard_credentials: tuple[tuple[str, str], ...] = (("", ""),)  # "onboard": factory ones
    file_url: str = ""  # base URL CPEs download stored files from ("": the URL they post to)
    file_url_ttl: float = 3600.0  # how long a signed download URL is good
    unknown_cpe: str = "accept"  # "accept" | "reject"

    def __post_init__(self) -> None:
        if self.port is None and self.tls_port is None:
            raise ConfigError("OKTOSCRIPTS_ACS_PORT", "the ACS needs a port: HTTP, HTTPS or both")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError(
                "OKTOSCRIPTS_ACS_TLS_CERT", "set both OKTOSCRIPTS_ACS_TLS_CERT and _TLS_KEY"
            )

    @classmethod
    def from_settings(cls) -> AcsConfig:
        path = _value("OKTOSCRIPTS_ACS_PATH")
        return cls(
            host=_value("OKTOSCRIPTS_ACS_HOST"),
            port=_port("OKTOSCRIPTS_ACS_PORT"),
            tls_port=_port("OKTOSCRIPTS_ACS_TLS_PORT"),
            tls_cert=_file("OKTOSCRIPTS_ACS_TLS_CERT"),
            tls_key=_file("OKTOSCRIPTS_ACS_TLS_KEY"),
            cr_ca=_file("OKTOSCRIPTS_ACS_CR_CA"),
            path=path if path.startswith("/") else "/" + path,
            session_timeout=_number("OKTOSCRIPTS_ACS_SESSION_TIMEOUT"),
            max_body=int(_number("OKTOSCRIPTS_ACS_MAX_BODY")),
            auth=_choice("OKTOSCRIPTS_ACS_AUTH", ("required", "onboard", "off")),
            onboard_credentials=_credentials("OKTOSCRIPTS_ACS_ONBOARD_CREDENTIALS"),
            file_url=_value("OKTOSCRIPTS_ACS_FILE_URL").rstrip("/"),
            file_url_ttl=_number("OKTOSCRIPTS_ACS_FILE_URL_TTL"),
            unknown_cpe=_choice("OKTOSCRIPTS_ACS_UNKNOWN_CPE", ("accept", "reject")),
        )
