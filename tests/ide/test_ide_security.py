"""Sign-in throttling, the API schema behind sign-in, the bounded editor check,
and Secure cookies with HSTS over HTTPS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.test import AsyncClient, Client

from ide.models import ApiToken
from oktoscripts.config import BASE_DIR
from tests.ide.conftest import PASSWORD


@pytest.fixture(autouse=True)
def throttling(settings) -> None:
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def sign_in(client: Client, username: str, password: str, address: str = "192.0.2.10"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_username_even_with_the_right_one(users):
    client = Client()
    for _ in range(5):
        response = sign_in(client, "admin", "not-the-password")
        assert response.status_code in (200, 429) and not signed_in(client)
    locked = sign_in(client, "admin", PASSWORD)
    assert locked.status_code == 429 and not signed_in(client)
    assert "Too many wrong passwords" in locked.content.decode()
    # From another address too: the username is locked, not only the address.
    elsewhere = Client()
    assert sign_in(elsewhere, "admin", PASSWORD, "198.51.100.7").status_code == 429
    assert not signed_in(elsewhere)
    # Another user from another address signs in as usual.
    assert sign_in(Client(), "viewer", PASSWORD, "198.51.100.8").status_code == 302


def test_wrong_passwords_from_one_address_lock_that_address_for_every_username(users):
    client = Client()
    for name in ("viewer", "author", "operator", "nobody", "someone-else"):
        sign_in(client, name, "guess", "203.0.113.9")
    response = sign_in(client, "admin", PASSWORD, "203.0.113.9")
    assert response.status_code == 429 and not signed_in(client)


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_holds_on_the_asynchronous_request_path():
    """Daphne serves requests through Django's async handler: the same lockout."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User

    await sync_to_async(User.objects.create_superuser)("admin", "", PASSWORD)
    client = AsyncClient()
    for _ in range(5):
        await client.post(
            "/login/", {"username": "admin", "password": "x"}, REMOTE_ADDR="192.0.2.44"
        )
    response = await client.post(
        "/login/", {"username": "admin", "password": PASSWORD}, REMOTE_ADDR="192.0.2.44"
    )
    assert response.status_code == 429


def test_the_lock_lifts_after_the_cool_off_and_a_success_forgets_the_failures(users, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    client = Client()
    for _ in range(5):
        sign_in(client, "admin", "nope")
    assert sign_in(client, "admin", PASSWORD).status_code == 429
    time.sleep(1.2)
    assert sign_in(client, "admin", PASSWORD).status_code == 302 and signed_in(client)
    client.logout()
    for _ in range(4):  # below the limit again: the success reset the count
        sign_in(client, "admin", "nope")
    assert sign_in(client, "admin", PASSWORD).status_code == 302


def test_api_tokens_are_not_passwords_a_locked_user_keeps_using_theirs(users):
    _, raw = ApiToken.issue(users["admin"], "job")
    for _ in range(6):
        sign_in(Client(), "admin", "nope")
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    assert api.get("/api/scripts").status_code == 200


def test_every_password_check_goes_through_the_lockout(users, rf):
    """authenticate() itself is throttled, not only the login view: a password
    check added anywhere later is covered."""
    from django.contrib.auth import authenticate

    for _ in range(5):
        request = rf.post("/anywhere", REMOTE_ADDR="192.0.2.99")
        assert authenticate(request, username="operator", password="bad") is None
    request = rf.post("/anywhere", REMOTE_ADDR="192.0.2.99")
    assert authenticate(request, username="operator", password=PASSWORD) is None


def test_the_api_schema_needs_a_signed_in_user(client, client_for):
    anonymous = client.get("/api/openapi.json")
    assert anonymous.status_code == 401
    assert "authentication required" in anonymous.json()["error"]
    assert client_for("viewer").get("/api/openapi.json").status_code == 200


def check(client: Client, source: str):  # noqa: ANN201
    return client.post(
        "/api/check", json.dumps({"source": source}), content_type="application/json"
    )


def test_the_editor_check_is_bounded(client_for, client):
    viewer = client_for("viewer")
    ok = check(viewer, "local d = get_devce('x')\nreturn d\n")
    assert ok.status_code == 200
    assert "did you mean 'get_device'" in ok.json()["problems"][0]["message"]
    too_big = check(viewer, "x = 1\n" * 40_000)
    assert too_big.status_code == 413
    assert too_big.json()["error"] == (
        "a script to check is at most 200,000 characters (this one has 240,000)"
    )
    assert check(client, "return 1").status_code == 401


def test_a_check_that_takes_too_long_is_given_up_and_the_next_one_works(client_for, monkeypatch):
    from ide import checking

    viewer = client_for("viewer")
    monkeypatch.setattr(checking, "CHECK_TIMEOUT_S", 0.001)
    slow = check(viewer, "get_devce(1)\n" * 10_000)
    assert slow.status_code == 503
    assert slow.json()["error"] == "no check now: the check took more than 0.001 s"
    monkeypatch.undo()
    assert check(viewer, "return 1").json() == {"problems": []}


HTTPS_PROBE = """
import json
from django.contrib.auth.models import User
from django.test import Client
User.objects.create_user("probe", password="a-long-enough-pass-91")
secure = Client(HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="localhost")
page = secure.get("/login/")
signed = secure.post("/login/", {"username": "probe", "password": "a-long-enough-pass-91"})
plain = Client(HTTP_HOST="localhost").get("/login/")
print(json.dumps({
    "hsts": page.get("Strict-Transport-Security"),
    "csrf_secure": page.cookies["csrftoken"]["secure"],
    "session_secure": signed.cookies["sessionid"]["secure"],
    "plain": [plain.status_code, plain.get("Location")],
    "healthz": Client(HTTP_HOST="localhost").get("/healthz").status_code,
}))
"""


def _probe(tmp_path, https: str) -> dict:
    import os

    env = {**os.environ, "OKTOSCRIPTS_DATA_DIR": str(tmp_path), "OKTOSCRIPTS_HTTPS": https}
    for name in ("DATABASE_URL", "NATS_URL", "MONGO_URI", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, timeout=120, cwd=BASE_DIR)
    out = subprocess.run(
        [*manage, "shell", "-c", HTTPS_PROBE],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BASE_DIR,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_behind_an_https_proxy_cookies_are_secure_and_hsts_is_sent(tmp_path):
    probe = _probe(tmp_path, "proxy")
    assert probe["hsts"] == "max-age=31536000"
    assert probe["csrf_secure"] is True and probe["session_secure"] is True
    assert probe["plain"] == [301, "https://localhost/login/"]
    assert probe["healthz"] in (200, 503)  # a supervisor's plain-HTTP probe is not redirected


def test_over_plain_http_nothing_changes(tmp_path):
    probe = _probe(tmp_path, "off")
    assert probe["hsts"] is None and probe["csrf_secure"] == ""


def test_new_users_get_a_valid_username_and_a_password_the_validators_accept(client_for):
    from django.contrib.auth.models import User

    admin = client_for("admin")
    refused = admin.post(
        "/users/new",
        {
            "username": "<img src=x onerror=alert(1)>",
            "password": "a-long-enough-pass-91",
            "role": "Viewer",
        },
        follow=True,
    )
    assert "Enter a valid username" in refused.content.decode()
    weak = admin.post(
        "/users/new",
        {"username": "maria.lopez", "password": "maria.lopez1", "role": "Viewer"},
        follow=True,
    )
    assert "too similar to the username" in weak.content.decode()
    assert not User.objects.filter(username__in=["maria.lopez"]).exists()
    made = admin.post(
        "/users/new", {"username": "maria.lopez", "password": "tide-lamp-orbit-7", "role": "Viewer"}
    )
    assert made.status_code == 302 and User.objects.filter(username="maria.lopez").exists()
