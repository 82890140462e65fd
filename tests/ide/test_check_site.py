"""/api/check on the real web process (daphne): a heavy check is made in the
checker process, so it never takes the CPU (and the GIL) of the process that
serves everyone's requests."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from tests.browser_site import running_site

pytestmark = pytest.mark.timeout(300)

# About 200,000 characters of unknown globals: a second or more of lint.
HEAVY = "".join(f"get_devce{n}('x') unknown_{n} = send_cwmp_mesage(1)\n" for n in range(3700))


@pytest.fixture(autouse=True)
def close_async_db_connections() -> None:
    """Replaces the package's autouse async fixture: this test uses no async ORM."""


@pytest.fixture(scope="module")
def site(tmp_path_factory, nats_url, mongo_uri):
    data = tmp_path_factory.mktemp("check-site")
    token_file = data / "token"
    setup = (
        "from django.contrib.auth.models import Group, User\n"
        "from ide.models import ApiToken\n"
        "user = User.objects.create_user('viewer1')\n"
        "user.groups.add(Group.objects.get(name='Viewer'))\n"
        f"open({str(token_file)!r}, 'w').write(ApiToken.issue(user, 't')[1])\n"
    )
    with running_site(data, nats_url, mongo_uri, setup, {}) as base:
        yield base, token_file.read_text()


def call(base: str, token: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def web_process_cpu_s(base: str) -> float:
    """User + system CPU seconds of the daphne process serving ``base`` (from /proc)."""
    port = base.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"daphne" in b" ".join(argv) and port.encode() in argv:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            continue
    raise AssertionError(f"no daphne process on port {port}")


def test_a_heavy_check_costs_the_web_process_next_to_nothing(site):
    """The lint of a large source takes a second or more of CPU: in the checker
    process, not in the process that serves everyone's requests."""
    base, token = site
    assert len(HEAVY) <= 200_000
    call(base, token, "/api/check", {"source": "return 1"})  # the checker process is up
    before = web_process_cpu_s(base)
    status, body = call(base, token, "/api/check", {"source": HEAVY})
    assert status == 200 and len(body["problems"]) > 1000
    spent = web_process_cpu_s(base) - before
    # 0.04 s measured; 0.42 s when the web process validated and encoded each
    # of the 7,400 problems itself.
    assert spent < 0.2, f"the web process spent {spent:.2f} s of CPU on the check"


def test_an_oversized_source_is_refused_before_it_is_checked(site):
    base, token = site
    status, body = call(base, token, "/api/check", {"source": "x = 1\n" * 50_000})
    assert status == 413
    assert body["error"].startswith("a script to check is at most 200,000 characters")
