"""The platform's web process (and others) for browser tests: its own SQLite
database under a temporary data dir, the session's NATS and MongoDB."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path("/tmp/ide_shots")  # the browser tests' screenshots

# The marks of a browser test module: skipped (saying why) without chromium.
BROWSER_TEST = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="chromium is not installed (make test installs it as root: "
        "apt-get install -y chromium)",
    ),
    pytest.mark.timeout(300),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _start(env: dict, logs: Path, name: str, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        stdout=open(logs / f"{name}.log", "wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_web(base: str, web: subprocess.Popen, logs: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/login/", timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline or web.poll() is not None:
                pytest.fail(
                    "the web process did not start: " + (logs / "web.log").read_text()[-2000:]
                )
            time.sleep(0.3)


@contextmanager
def running_site(
    data: Path,
    nats_url: str,
    mongo_uri: str,
    setup: str,
    processes: dict[str, list[str]],
    settings: dict[str, str] | None = None,
) -> Iterator[str]:
    """Migrate, run ``setup`` in ``manage.py shell``, start daphne and the named
    ``manage.py`` processes; yields the site's base URL, stops them all after.
    ``settings``: more environment variables of the platform (README "Configuration")."""
    env = {
        **os.environ,
        "OKTOSCRIPTS_DATA_DIR": str(data),
        "NATS_URL": nats_url,
        "MONGO_URI": mongo_uri,
        "SECRET_KEY": f"browser-test-secret-{data.name}",
        "PYTHONPATH": str(ROOT),
        **(settings or {}),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)  # its own SQLite under the data dir, never the CI database
    manage(env, "migrate", "-v0")
    manage(env, "shell", "-c", setup)
    port = free_port()
    logs = data / "logs"
    logs.mkdir()
    web = _start(
        env,
        logs,
        "web",
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "oktoscripts.asgi:application"],
    )
    others = [_start(env, logs, name, ["manage.py", *argv]) for name, argv in processes.items()]
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_web(base, web, logs)
        yield base
    finally:
        for proc in (web, *others):
            proc.terminate()
        for proc in (web, *others):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def acs_with_simulated_cpes(prefix: str, count: int) -> tuple[dict[str, str], dict[str, list]]:
    """(settings, processes) for running_site: an ACS on a free port and
    ``count`` simulated CPEs with serials starting ``prefix`` talking to it."""
    acs_port = free_port()
    settings = {
        "OKTOSCRIPTS_ACS_PORT": str(acs_port),
        "OKTOSCRIPTS_ACS_TLS_PORT": "off",
        "OKTOSCRIPTS_ACS_HOST": "127.0.0.1",
    }
    processes = {
        "acs": ["acs"],
        "simulate": [
            "simulate",
            "--cwmp",
            str(count),
            "--prefix",
            prefix,
            "--acs-url",
            f"http://127.0.0.1:{acs_port}/",
            "--interval",
            "3600",
        ],
    }
    return settings, processes


@contextmanager
def chromium() -> Iterator[object]:
    """Debian's chromium, headless, driven by Playwright (never its own browser)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
        )
        try:
            yield browser
        finally:
            browser.close()


def login(
    browser: object, base: str, username: str, password: str, landing: str = "/scripts/"
) -> object:
    """A new page signed in as ``username``, on ``landing``. The page's script
    errors (uncaught exceptions, console errors but failed loads) gather in
    ``page.errors``."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and "Failed to load resource" not in m.text
            and page.errors.append(m.text)
        ),
    )
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + landing)
    return page


def shot(page: object, name: str) -> None:
    """A screenshot of what the page's viewport shows, as SHOTS/<name>.png."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
