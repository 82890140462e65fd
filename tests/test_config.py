"""A wrong setting stops a command with one line naming it, not a traceback.

Each case runs manage.py as a user would, in a subprocess with a fresh data
directory, and reads what it printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from oktoscripts.config import BASE_DIR
from oktoscripts.launcher.embedded.ports import free_port

SERVICE_SETTINGS = ("NATS_URL", "MONGO_URI", "DATABASE_URL", "MQTT_URL", "REDIS_URL")


def manage(data_dir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_SETTINGS}
    env.update(
        OKTOSCRIPTS_DATA_DIR=str(data_dir),
        OKTOSCRIPTS_WEB_PORT=str(free_port()),
        OKTOSCRIPTS_ACS_PORT=str(free_port()),
        OKTOSCRIPTS_ACS_TLS_PORT=str(free_port()),
        OKTOSCRIPTS_USP_WS_PORT=str(free_port()),
    )
    env.update(settings)
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_naming(result: subprocess.CompletedProcess, setting: str) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "url",
    [
        "not a url",
        "mysql://user:pw@localhost/okto",
        "postgres://user@localhost:54x2/okto",
        "postgres://user@localhost:5432",
    ],
)
def test_malformed_database_url(data_dir, url):
    result = manage(data_dir, "check", DATABASE_URL=url)
    assert_one_line_naming(result, "DATABASE_URL")


def test_a_password_in_a_malformed_database_url_is_not_printed(data_dir):
    result = manage(data_dir, "check", DATABASE_URL="mysql://okto:s3cret-pw@db:3306/okto")
    line = assert_one_line_naming(result, "DATABASE_URL")
    assert "s3cret-pw" not in line


def test_malformed_nats_url(data_dir):
    result = manage(data_dir, "check", NATS_URL="http://127.0.0.1:4222")
    assert_one_line_naming(result, "NATS_URL")


def test_unreachable_mongo_uri_stops_up_before_it_starts_anything(data_dir):
    uri = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    result = manage(data_dir, "up", MONGO_URI=uri)
    line = assert_one_line_naming(result, "MONGO_URI")
    assert "refused" in line.lower()
    assert not (data_dir / "nats").exists()  # the embedded NATS was not started


def test_unreachable_nats_url_stops_up(data_dir):
    result = manage(data_dir, "up", NATS_URL=f"nats://127.0.0.1:{free_port()}")
    assert_one_line_naming(result, "NATS_URL")


def test_nats_url_that_is_not_nats_stops_up(data_dir):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = manage(data_dir, "up", NATS_URL=f"nats://127.0.0.1:{port}")
    line = assert_one_line_naming(result, "NATS_URL")
    assert "not as a NATS server" in line or "no answer" in line


def test_unreachable_postgres_stops_up(data_dir):
    url = f"postgres://okto:secret@127.0.0.1:{free_port()}/okto"
    result = manage(data_dir, "up", DATABASE_URL=url)
    line = assert_one_line_naming(result, "DATABASE_URL")
    assert "secret" not in line


@pytest.mark.parametrize(
    "setting",
    [
        "OKTOSCRIPTS_WEB_PORT",
        "OKTOSCRIPTS_ACS_PORT",
        "OKTOSCRIPTS_ACS_TLS_PORT",
        "OKTOSCRIPTS_USP_WS_PORT",
    ],
)
def test_a_platform_port_in_use_stops_up(data_dir, setting):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = manage(data_dir, "up", **{setting: str(port)})
    line = assert_one_line_naming(result, setting)
    assert str(port) in line


def test_a_password_in_an_unreachable_mongo_uri_is_not_printed(data_dir):
    uri = f"mongodb://okto:hunter2@127.0.0.1:{free_port()}/?directConnection=true"
    result = manage(data_dir, "up", MONGO_URI=uri)
    line = assert_one_line_naming(result, "MONGO_URI")
    assert "hunter2" not in line


@pytest.mark.parametrize(
    "password, why",
    [
        ("pw-42", "too short"),
        ("password123", "too common"),
        ("20250117203344", "entirely numeric"),
        ("admin123", "too similar to the username"),
    ],
)
def test_a_weak_admin_password_stops_up_before_the_admin_is_created(data_dir, password, why):
    result = manage(data_dir, "up", OKTOSCRIPTS_ADMIN_PASSWORD=password)
    line = assert_one_line_naming(result, "OKTOSCRIPTS_ADMIN_PASSWORD")
    assert why in line and password not in line
    assert not (data_dir / "nats").exists()  # stopped before it started anything


def test_an_unknown_https_mode_is_refused(data_dir):
    result = manage(data_dir, "check", OKTOSCRIPTS_HTTPS="maybe")
    line = assert_one_line_naming(result, "OKTOSCRIPTS_HTTPS")
    assert "off, on or proxy" in line
