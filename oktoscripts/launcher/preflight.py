"""Checks ``up`` makes before it starts anything: are the configured services
reachable, is the web port free. Each failure is a ConfigError naming the
setting to fix, which ``manage.py`` prints as one line."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from oktoscripts.config import ConfigError, redact
from oktoscripts.launcher.embedded.ports import port_in_use

TIMEOUT = 3.0  # seconds a configured service gets to answer


def check_port_free(setting: str, host: str, port: int) -> None:
    """The port a platform process will listen on is free (else a child would
    crash-loop on start instead of ``up`` saying what is wrong)."""
    if port_in_use(host, port):
        raise ConfigError(
            setting,
            f"port {port} on {host} is already in use (another `up` running?); "
            f"stop it or choose another port with {setting}",
        )


def check_nats(urls: str) -> None:
    """At least one server of NATS_URL accepts a connection (and speaks NATS)."""
    problems = []
    for url in (u.strip() for u in urls.split(",")):
        problem = _nats_problem(url)
        if problem is None:
            return
        problems.append(f"{redact(url)}: {problem}")
    raise ConfigError("NATS_URL", "cannot reach " + "; ".join(problems))


def _nats_problem(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 4222), TIMEOUT) as sock:
            if parts.scheme in ("ws", "wss"):
                return None  # a WebSocket endpoint says nothing before the handshake
            sock.settimeout(TIMEOUT)
            greeting = sock.recv(4)
    except OSError as exc:
        return _os_error_text(exc)
    if greeting != b"INFO":
        return "it answers, but not as a NATS server"
    return None


def check_admin_password(password: str, username: str) -> None:
    """OKTOSCRIPTS_ADMIN_PASSWORD passes the password validators (AUTH_PASSWORD_VALIDATORS),
    as any password set on the Users page does."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import ValidationError, validate_password

    try:
        validate_password(password, get_user_model()(username=username))
    except ValidationError as exc:
        raise ConfigError("OKTOSCRIPTS_ADMIN_PASSWORD", " ".join(exc.messages)) from None


def check_mongo(uri: str) -> None:
    """MONGO_URI answers a ping within TIMEOUT."""
    from pymongo.errors import ConfigurationError, PyMongoError

    from oktoscripts.devices.client import new_client

    try:
        client = new_client(uri, timeout_s=TIMEOUT, probe=True)
    except (ConfigurationError, ValueError, TypeError) as exc:
        raise ConfigError("MONGO_URI", f"invalid {redact(uri)}: {exc}") from None
    try:
        client.admin.command("ping")
    except PyMongoError as exc:
        reason = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
        raise ConfigError("MONGO_URI", f"cannot reach {redact(uri)}: {reason}") from None
    finally:
        client.close()


def check_database(setting: str) -> None:
    """The Django database accepts a connection (``setting`` names what configures it)."""
    from django.db import connection

    try:
        connection.ensure_connection()
    except Exception as exc:  # each backend raises its own errors
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(setting, f"cannot connect to the database: {first_line}") from None
    finally:
        connection.close()


def run_checks(checks: list[tuple[str, Callable[[], None]]]) -> None:
    """Run ``(setting, check)`` pairs at once; raise the first failure in list order.
    A check that hangs past its own timeouts counts as a failure, and its thread
    (a daemon) is left behind rather than holding up the exit."""
    results: dict[int, BaseException | None] = {}
    threads = []
    for index, (_, check) in enumerate(checks):
        thread = threading.Thread(target=_record, args=(check, results, index), daemon=True)
        thread.start()
        threads.append(thread)
    for index, ((setting, _), thread) in enumerate(zip(checks, threads, strict=True)):
        thread.join(TIMEOUT * 3)
        if thread.is_alive():
            raise ConfigError(setting, f"no answer within {TIMEOUT * 3:g} s")
        error = results.get(index)
        if error is not None:
            raise error


def _record(check: Callable[[], None], results: dict, index: int) -> None:
    try:
        check()
        results[index] = None
    except BaseException as exc:  # handed to the main thread to raise
        results[index] = exc


def _os_error_text(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    return exc.strerror or str(exc)
