"""The platform's configuration: every environment variable, read here only.

``VARIABLES`` is the one table of settings: each variable's name, type,
default and meaning. Modules read a setting with ``value(NAME)`` (typed, the
default when unset) or ``text(NAME)`` (the raw text, "" when unset); reading a
name that is not in the table is an error, so a new setting cannot slip in
undocumented. The README's configuration tables are checked against this one
(tests/test_config_table.py): every variable is documented, no row is stale.

Every setting has an embedded default so a fresh clone runs with no
configuration at all. A malformed value raises ConfigError naming the
setting; ``manage.py`` turns it into a one-line message instead of a
traceback. Checks of ranges and choices stay with the module that uses the
setting, next to what the value means.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A setting that cannot be used. ``str()`` is the one-line message for the user."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


# ---------------------------------------------------------------- the table

KINDS = ("text", "secret", "int", "number", "bool", "list", "url")


@dataclass(frozen=True)
class Variable:
    """One environment variable. ``default`` is the value when it is unset
    (None: computed by the module that uses it, which ``doc`` says);
    ``schemes`` are the URL schemes a ``url`` accepts."""

    name: str
    kind: str
    default: Any
    doc: str
    schemes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")


_NATS = ("nats", "tls", "ws", "wss")
_MONGO = ("mongodb", "mongodb+srv")
_MQTT = ("mqtt", "mqtts", "tcp")
_REDIS = ("redis", "rediss", "unix")

_TABLE = (
    # Services
    Variable(
        "NATS_URL", "url", "", "NATS server(s), comma-separated; unset: the embedded one", _NATS
    ),
    Variable(
        "MONGO_URI", "url", "", "MongoDB of devices and the CWMP queue; unset: embedded", _MONGO
    ),
    Variable("OKTOSCRIPTS_MONGO_DB", "text", "oktoscripts", "database name inside MONGO_URI"),
    Variable("DATABASE_URL", "text", "", "Django database; unset: SQLite under the data dir"),
    Variable("REDIS_URL", "url", "", "Redis of the Channels layer; unset: in memory", _REDIS),
    Variable("MQTT_URL", "url", "", "MQTT broker of the USP MQTT MTP; unset: embedded", _MQTT),
    Variable("OKTOSCRIPTS_BUS_PREFIX", "text", "okto", "prefix of NATS subjects and streams"),
    Variable("OKTOSCRIPTS_STREAM_REPLICAS", "int", 1, "servers storing each stream (1 to 5)"),
    # Django and the web process
    Variable("SECRET_KEY", "secret", "", "Django secret key; unset: generated under the data dir"),
    Variable(
        "ALLOWED_HOSTS",
        "list",
        ["localhost", "127.0.0.1", "[::1]"],
        "host names the web process answers to",
    ),
    Variable("CSRF_TRUSTED_ORIGINS", "list", [], "origins allowed to post forms behind a proxy"),
    Variable("DEBUG", "bool", False, "Django debug mode"),
    Variable("LOG_LEVEL", "text", "INFO", "log level of every process"),
    Variable("OKTOSCRIPTS_DATA_DIR", "text", "var", "where all local state lives"),
    Variable(
        "OKTOSCRIPTS_ADMIN_PASSWORD",
        "secret",
        "",
        "password of the first admin; unset: generated and shown once",
    ),
    Variable("OKTOSCRIPTS_WEB_PORT", "int", 8000, "port of the web process started by up"),
    Variable("OKTOSCRIPTS_HTTPS", "text", "off", "off, on or proxy"),
    Variable("OKTOSCRIPTS_HSTS_SECONDS", "int", 31_536_000, "HSTS max-age when HTTPS is on"),
    Variable("OKTOSCRIPTS_LOGIN_FAILURES", "int", 5, "wrong passwords before sign-in locks"),
    Variable("OKTOSCRIPTS_LOGIN_LOCKOUT", "int", 900, "seconds sign-in stays locked"),
    # TLS
    Variable("OKTOSCRIPTS_TLS_CERT", "text", "", "certificate of device-facing TLS ports"),
    Variable("OKTOSCRIPTS_TLS_KEY", "text", "", "key of OKTOSCRIPTS_TLS_CERT"),
    Variable("OKTOSCRIPTS_TLS_CA", "text", "", "CA bundle device client certificates chain to"),
    Variable("OKTOSCRIPTS_TLS_HOSTNAMES", "list", [], "more names for the generated certificate"),
    # Runs and workers
    Variable("OKTOSCRIPTS_WORKER_CONCURRENCY", "number", 2000, "runs one worker holds at once"),
    Variable(
        "OKTOSCRIPTS_WORKER_LUA_THREADS",
        "number",
        None,
        "threads executing Lua in one worker; unset: the number of cores",
    ),
    Variable("OKTOSCRIPTS_WORKER_HEARTBEAT", "number", 2.0, "seconds between heartbeats"),
    Variable(
        "OKTOSCRIPTS_WORKER_LOST_AFTER",
        "number",
        15.0,
        "seconds without a heartbeat before a worker's runs are lost",
    ),
    Variable(
        "OKTOSCRIPTS_WORKER_STUCK_RESTART",
        "number",
        60.0,
        "seconds a stuck Lua thread may stay before its worker restarts",
    ),
    Variable(
        "OKTOSCRIPTS_DEBUG_WALL_SECONDS",
        "number",
        1800.0,
        "seconds a debug run may stay paused in all before it is cancelled",
    ),
    Variable(
        "OKTOSCRIPTS_LIMIT_INSTRUCTIONS",
        "number",
        None,
        "default instruction limit of a run; unset: the engine's (1,000,000,000)",
    ),
    Variable(
        "OKTOSCRIPTS_LIMIT_MEMORY_BYTES",
        "number",
        None,
        "default memory limit of a run; unset: the engine's (256 MiB)",
    ),
    Variable(
        "OKTOSCRIPTS_LIMIT_WALL_SECONDS",
        "number",
        None,
        "default wall-clock limit of a run; unset: the engine's (600 s)",
    ),
    Variable(
        "OKTOSCRIPTS_LIMIT_OUTPUT_BYTES",
        "number",
        None,
        "default output limit of a run; unset: the engine's (4 MiB)",
    ),
    Variable(
        "OKTOSCRIPTS_LIMIT_RESULT_BYTES",
        "number",
        None,
        "largest result of a run as JSON; unset: 16 MiB",
    ),
    Variable(
        "OKTOSCRIPTS_SCHEDULE_GRACE",
        "number",
        60.0,
        "seconds a schedule's tick may be late and still run",
    ),
    # Devices
    Variable("OKTOSCRIPTS_DIGEST_REALM", "text", "oktoscripts", "HTTP Digest realm"),
    Variable("OKTOSCRIPTS_OFFLINE_FACTOR", "number", 3, "periodic inform intervals of silence"),
    Variable(
        "OKTOSCRIPTS_OFFLINE_TIMEOUT",
        "number",
        3600,
        "seconds of silence of a device with no periodic inform interval",
    ),
    # TR-069 ACS
    Variable("OKTOSCRIPTS_ACS_HOST", "text", "0.0.0.0", "address the ACS listens on"),
    Variable("OKTOSCRIPTS_ACS_PATH", "text", "/", "URL path CPEs post to"),
    Variable("OKTOSCRIPTS_ACS_PORT", "text", "7547", "plain HTTP port, or off"),
    Variable("OKTOSCRIPTS_ACS_TLS_PORT", "text", "7548", "HTTPS port, or off"),
    Variable("OKTOSCRIPTS_ACS_TLS_CERT", "text", "", "the ACS's own HTTPS certificate"),
    Variable("OKTOSCRIPTS_ACS_TLS_KEY", "text", "", "key of OKTOSCRIPTS_ACS_TLS_CERT"),
    Variable("OKTOSCRIPTS_ACS_CR_CA", "text", "", "more CAs for https:// Connection Requests"),
    Variable("OKTOSCRIPTS_ACS_AUTH", "text", "required", "required, onboard or off"),
    Variable(
        "OKTOSCRIPTS_ACS_ONBOARD_CREDENTIALS",
        "secret",
        ":",
        "onboard: the factory credentials, user:password,...",
    ),
    Variable("OKTOSCRIPTS_ACS_FILE_URL", "text", "", "base URL of stored files' downloads"),
    Variable(
        "OKTOSCRIPTS_ACS_FILE_URL_TTL", "number", 3600.0, "seconds a signed download URL is good"
    ),
    Variable("OKTOSCRIPTS_ACS_UNKNOWN_CPE", "text", "accept", "accept or reject"),
    Variable(
        "OKTOSCRIPTS_ACS_SESSION_TIMEOUT", "number", 30.0, "seconds a silent CPE keeps its session"
    ),
    Variable("OKTOSCRIPTS_ACS_MAX_BODY", "number", 1024 * 1024, "largest request body, bytes"),
    # USP controller
    Variable(
        "OKTOSCRIPTS_USP_ENDPOINT_ID",
        "text",
        "oui:000000:oktoscripts-controller",
        "the controller's Endpoint ID",
    ),
    Variable("OKTOSCRIPTS_USP_MQTT_TOPIC", "text", "usp/controller", "the controller's topic"),
    Variable("OKTOSCRIPTS_USP_MQTT_AGENT_TOPIC", "text", "usp/agent", "agents' topic prefix"),
    Variable("OKTOSCRIPTS_USP_MQTT_IDENTITY", "text", "topic", "topic or none"),
    Variable("OKTOSCRIPTS_USP_MQTT_VERSION", "text", "auto", "5, 3.1.1 or auto"),
    Variable("OKTOSCRIPTS_MQTT_CA", "text", "", "CA bundle for an mqtts:// broker"),
    Variable("OKTOSCRIPTS_MQTT_CERT", "text", "", "client certificate for the broker"),
    Variable("OKTOSCRIPTS_MQTT_KEY", "text", "", "key of OKTOSCRIPTS_MQTT_CERT"),
    Variable(
        "OKTOSCRIPTS_EMBEDDED_MQTT_AUTH",
        "text",
        "",
        "the embedded broker's login secrets (set by up)",
    ),
    Variable("OKTOSCRIPTS_USP_WS_HOST", "text", "127.0.0.1", "host of the WebSocket MTP"),
    Variable("OKTOSCRIPTS_USP_WS_PORT", "int", 8081, "port of the WebSocket MTP"),
    Variable("OKTOSCRIPTS_USP_WS_TLS", "bool", True, "the WebSocket MTP over TLS"),
    Variable("OKTOSCRIPTS_USP_WS_AUTH", "text", "on", "on, cert or off"),
    Variable("OKTOSCRIPTS_USP_WS_DIAL", "list", [], "agents' WebSocket servers to dial"),
    Variable("OKTOSCRIPTS_USP_TIMEOUT", "int", 30, "seconds a script waits for a USP response"),
    Variable("OKTOSCRIPTS_USP_MQTT_LEASE", "int", 300, "seconds of an MQTT agent's lease"),
    # Single sign-on: OpenID Connect
    Variable("OKTOSCRIPTS_OIDC_ISSUER", "text", "", "issuer URL; unset: OpenID Connect off"),
    Variable("OKTOSCRIPTS_OIDC_CLIENT_ID", "text", "", "client id at the provider"),
    Variable("OKTOSCRIPTS_OIDC_CLIENT_SECRET", "text", "", "client secret at the provider"),
    Variable("OKTOSCRIPTS_OIDC_SCOPES", "text", "openid profile email", "scopes asked for"),
    Variable("OKTOSCRIPTS_OIDC_GROUPS_CLAIM", "text", "groups", "the claim listing groups"),
    Variable("OKTOSCRIPTS_OIDC_ROLES", "text", "", "claim values to roles"),
    Variable(
        "OKTOSCRIPTS_OIDC_USERNAME_CLAIM",
        "text",
        "preferred_username",
        "the claim naming a new account",
    ),
    Variable("OKTOSCRIPTS_OIDC_LABEL", "text", "single sign-on", "the sign-in button's label"),
    Variable("OKTOSCRIPTS_OIDC_SIGN_ALGO", "text", "RS256", "ID token signature algorithm"),
    Variable("OKTOSCRIPTS_OIDC_VERIFY_TLS", "bool", True, "check the provider's certificate"),
    Variable("OKTOSCRIPTS_OIDC_TIMEOUT", "number", 10.0, "seconds a call to the provider takes"),
    # Single sign-on: LDAP
    Variable("OKTOSCRIPTS_LDAP_URI", "text", "", "the directory; unset: LDAP off"),
    Variable("OKTOSCRIPTS_LDAP_START_TLS", "bool", False, "StartTLS on ldap://"),
    Variable("OKTOSCRIPTS_LDAP_BIND_DN", "text", "", "the searching account; unset: anonymous"),
    Variable("OKTOSCRIPTS_LDAP_BIND_PASSWORD", "secret", "", "its password"),
    Variable("OKTOSCRIPTS_LDAP_USER_BASE", "text", "", "where people are"),
    Variable("OKTOSCRIPTS_LDAP_USER_FILTER", "text", "(uid=%(user)s)", "how a username is found"),
    Variable("OKTOSCRIPTS_LDAP_GROUP_BASE", "text", "", "where groups are"),
    Variable("OKTOSCRIPTS_LDAP_GROUP_TYPE", "text", "groupOfNames", "the groups' object class"),
    Variable("OKTOSCRIPTS_LDAP_ROLES", "text", "", "group DNs to roles"),
    # Metrics (oktoscripts/metrics/conf.py)
    Variable("OKTOSCRIPTS_METRICS", "bool", True, "record series and serve /metrics"),
    Variable(
        "OKTOSCRIPTS_METRICS_PORT",
        "text",
        "",
        "this process's /metrics port, or off; up: the first of its processes' (9460)",
    ),
    Variable("OKTOSCRIPTS_METRICS_HOST", "text", "127.0.0.1", "address /metrics ports listen on"),
    Variable(
        "OKTOSCRIPTS_METRICS_TOKEN", "secret", "", "bearer token that may scrape from anywhere"
    ),
    Variable(
        "OKTOSCRIPTS_METRICS_ALLOW",
        "list",
        ["127.0.0.0/8", "::1"],
        "networks that may scrape without the token, or none",
    ),
)
VARIABLES: dict[str, Variable] = {v.name: v for v in _TABLE}


def variable(name: str) -> Variable:
    """The declaration of ``name``; ConfigError for a name not in the table."""
    try:
        return VARIABLES[name]
    except KeyError:
        raise ConfigError(
            name,
            "not a setting of this platform: declare it in "
            "oktoscripts/config.py (VARIABLES) and the README",
        ) from None


def text(name: str) -> str:
    """The variable's text as set ("" when unset); stripped, except secrets."""
    raw = os.environ.get(variable(name).name, "")
    return raw if VARIABLES[name].kind == "secret" else raw.strip()


def texts(names: tuple[str, ...]) -> tuple[str, ...]:
    """``text`` of several variables at once (no secrets): what the engine reads
    for every run, so it is kept to one pass over the environment."""
    environ = os.environ
    return tuple(environ.get(variable(name).name, "").strip() for name in names)


def is_set(name: str) -> bool:
    return text(name) != ""


def value(name: str) -> Any:
    """The variable's typed value: its default when unset, ConfigError when malformed."""
    return parse(name, text(name))


def parse(name: str, raw: str) -> Any:
    """``raw`` (text from the environment, or a Django setting's) as the variable's type."""
    var = variable(name)
    if raw == "" or raw is None:
        return var.default
    kind = var.kind
    if kind in ("text", "secret"):
        return raw
    if kind == "bool":
        return _boolean(name, raw)
    if kind == "list":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if kind == "url":
        return _url(name, raw, var.schemes)
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(name, f"expected an integer, got {raw!r}") from None
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, f"expected a number, got {raw!r}") from None


def environment() -> dict[str, str]:
    """The whole environment, for a child process to inherit (not for reading settings)."""
    return dict(os.environ)


def redact(url: str) -> str:
    """``url`` without its password, fit for an error message or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def data_dir() -> Path:
    """Where the platform keeps its state (SQLite, NATS store, MongoDB files, secrets)."""
    raw = text("OKTOSCRIPTS_DATA_DIR")
    path = Path(raw).expanduser() if raw else BASE_DIR / VARIABLES["OKTOSCRIPTS_DATA_DIR"].default
    if not path.is_absolute():
        path = BASE_DIR / path
    return path


def _boolean(name: str, raw: str) -> bool:
    raw = raw.lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"expected a boolean (1/0, true/false), got {raw!r}")


def _url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    """A service URL (or several, comma-separated) checked for scheme, host and port."""
    for url in raw.split(","):
        parts = urlsplit(url.strip())
        if parts.scheme not in schemes:
            expected = " or ".join(f"{s}://" for s in schemes)
            raise ConfigError(name, f"expected a URL starting with {expected}, got {redact(raw)!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ConfigError(name, f"bad port in {redact(raw)!r}") from None
        if not parts.hostname:
            raise ConfigError(name, f"no host in {redact(raw)!r}")
    return raw


# SQLite is shared by the web process and every worker: WAL lets readers and
# the writer overlap, IMMEDIATE transactions take the write lock up front (no
# deadlock-prone lock upgrades), and a writer waits up to 20 s for its turn.
SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def database_config(url: str, default_sqlite: Path) -> dict:
    """The Django DATABASES['default'] entry for DATABASE_URL (SQLite under var/ when unset)."""
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(default_sqlite),
            "OPTIONS": dict(SQLITE_OPTIONS),
        }
    import dj_database_url

    scheme = urlsplit(url).scheme
    if scheme not in ("postgres", "postgresql", "sqlite", "pgsql"):
        raise ConfigError(
            "DATABASE_URL",
            f"unsupported database {scheme or redact(url)!r} "
            "(use postgres://user:pass@host:port/name or sqlite:///path)",
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj_database_url raises assorted errors on bad input
        raise ConfigError("DATABASE_URL", f"cannot parse {redact(url)!r}: {exc}") from None
    if config["ENGINE"].endswith("sqlite3"):
        config.pop("CONN_MAX_AGE", None)
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    elif not config.get("NAME"):
        raise ConfigError("DATABASE_URL", f"no database name in {redact(url)!r}")
    else:
        # A server that does not answer must fail in seconds, not after TCP's minutes.
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    return config


# channels-redis waits for a consumer's messages with blocking pops of 5 s;
# redis-py 8 stops reading a socket after 5 s by default, which ended every
# WebSocket (run consoles) after a few quiet seconds. Reads may take this long:
# a blocking pop fits, a Redis that went away is still noticed.
REDIS_READ_TIMEOUT_S = 30.0


def channel_layers(redis_url: str) -> dict:
    """Django's CHANNEL_LAYERS: on Redis when REDIS_URL is set (several web
    processes), in memory otherwise."""
    if not redis_url:
        return {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    host = {"address": redis_url, "socket_timeout": REDIS_READ_TIMEOUT_S}
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [host]},
        }
    }


def secret_key(directory: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept under the data dir."""
    key = text("SECRET_KEY").strip()
    if key:
        return key
    path = directory / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # O_EXCL: two processes starting at once agree on the first key written.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def endpoints_file(directory: Path) -> Path:
    """Where ``up`` records the URLs of the embedded services it started."""
    return directory / "run" / "endpoints.json"


def up_lock_file(directory: Path) -> Path:
    """The file a running ``up`` holds locked (flock) for as long as it runs."""
    return directory / "run" / "up.lock"


def up_is_running(directory: Path) -> bool:
    """True while an ``up`` holds the data directory: its endpoints are live."""
    import fcntl

    try:
        with open(up_lock_file(directory), "rb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False
    except OSError:
        return False


def embedded_endpoints(directory: Path) -> dict[str, str]:
    """The URLs of embedded services a running ``up`` published, so that a
    process started by hand next to it (``manage.py runscript --remote``)
    finds them without configuration. Nothing once that ``up`` is gone, even
    if it was killed before it could remove the file."""
    if not up_is_running(directory):
        return {}
    try:
        return json.loads(endpoints_file(directory).read_text())
    except (FileNotFoundError, ValueError):
        return {}
