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
            raise ConfigError(name, f"expected a URL starting with {expected}, got {raw!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ConfigError(name, f"bad port in {raw!r}") from None
        if not parts.hostname:
            raise ConfigError(name, f"no host in {raw!r}")
    return raw


def database_config(url: str, default_sqlite: Path) -> dict:
    """The Django DATABASES['default'] entry for DATABASE_URL (SQLite under var/ when unset)."""
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(default_sqlite),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    import dj_database_url

    scheme = urlsplit(url).scheme
    if scheme not in ("postgres", "postgresql", "sqlite", "pgsql"):
        raise ConfigError("DATABASE_URL", f"unsupported database {scheme or url!r} "
                          "(use postgres://user:pass@host:port/name or sqlite:///path)")
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj_database_url raises assorted errors on bad input
        raise ConfigError("DATABASE_URL", f"cannot parse {url!r}: {exc}") from None
    if config["ENGINE"].endswith("sqlite3"):
        config.pop("CONN_MAX_AGE", None)
    elif not config.get("NAME"):
        raise ConfigError("DATABASE_URL", f"no database name in {url!r}")
    return config


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


def embedded_endpoints(directory: Path) -> dict[str, str]:
    """The URLs of embedded services a running ``up`` published, so that a
    process started by hand next to it (``manage.py runscript --remote``)
    finds them without configuration."""
    try:
        return json.loads(endpoints_file(directory).read_text())
    except (FileNotFoundError, ValueError):
        return {}
