"""Reading the platform's configuration from the environment.

Every setting has an embedded default so a fresh clone runs with no
configuration at all. A malformed value raises ConfigError naming the
setting; ``manage.py`` turns it into a one-line message instead of a
traceback.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """A setting that cannot be used. ``str()`` is the one-line message for the user."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


def redact(url: str) -> str:
    """``url`` without its password, fit for an error message or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def data_dir() -> Path:
    """Where the platform keeps its state (SQLite, NATS store, MongoDB files, secrets)."""
    raw = os.environ.get("OKTOSCRIPTS_DATA_DIR", "").strip()
    path = Path(raw).expanduser() if raw else BASE_DIR / "var"
    if not path.is_absolute():
        path = BASE_DIR / path
    return path


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"expected a boolean (1/0, true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(name, f"expected an integer, got {raw!r}") from None


def service_url(name: str, schemes: tuple[str, ...]) -> str:
    """A service URL from the environment, or "" when it is unset (embedded default)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ""
    for url in raw.split(","):
        parts = urlsplit(url.strip())
        if parts.scheme not in schemes:
            expected = " or ".join(f"{s}://" for s in schemes)
            raise ConfigError(
                name, f"expected a URL starting with {expected}, got {redact(raw)!r}"
            )
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
        raise ConfigError("DATABASE_URL", f"unsupported database {scheme or redact(url)!r} "
                          "(use postgres://user:pass@host:port/name or sqlite:///path)")
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
    key = os.environ.get("SECRET_KEY", "").strip()
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
