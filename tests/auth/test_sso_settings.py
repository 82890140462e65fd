"""Single sign-on settings: read from the environment, refused with one line
naming the variable when they cannot work; and the local sign-in keeps
working when the identity provider is down."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from oktoscripts.accounts import discovery
from oktoscripts.accounts.config import OIDC_BACKEND, OIDCConfig, oidc_from_env, parse_role_map
from oktoscripts.config import ConfigError
from oktoscripts.scripts.models import AuditEvent
from tests.browser_site import ROOT, free_port

OIDC_ENV = {
    "OKTOSCRIPTS_OIDC_ISSUER": "https://id.example.net/realms/ops/",
    "OKTOSCRIPTS_OIDC_CLIENT_ID": "oktoscripts",
    "OKTOSCRIPTS_OIDC_CLIENT_SECRET": "s3cret",
    "OKTOSCRIPTS_OIDC_ROLES": "/okto/admins=Admin;\n Okto-Ops = Operator",
}


def test_oidc_is_off_without_an_issuer(monkeypatch):
    monkeypatch.delenv("OKTOSCRIPTS_OIDC_ISSUER", raising=False)
    assert oidc_from_env() is None


def test_oidc_settings_from_the_environment(monkeypatch):
    for name, value in OIDC_ENV.items():
        monkeypatch.setenv(name, value)
    cfg = oidc_from_env()
    assert cfg.issuer == "https://id.example.net/realms/ops"
    assert cfg.discovery_url == (
        "https://id.example.net/realms/ops/.well-known/openid-configuration"
    )
    assert cfg.roles == {"/okto/admins": "Admin", "okto-ops": "Operator"}
    assert (cfg.groups_claim, cfg.username_claim, cfg.scopes) == (
        "groups",
        "preferred_username",
        "openid profile email",
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "OKTOSCRIPTS_OIDC_CLIENT_SECRET",
            "",
            "OKTOSCRIPTS_OIDC_CLIENT_SECRET: required when OKTOSCRIPTS_OIDC_ISSUER is set",
        ),
        ("OKTOSCRIPTS_OIDC_ROLES", "okto=Superhero", "'Superhero' is not a role"),
        ("OKTOSCRIPTS_OIDC_ROLES", ";", "nobody could sign in"),
        ("OKTOSCRIPTS_OIDC_ISSUER", "id.example.net", "expected an https:// URL"),
        ("OKTOSCRIPTS_OIDC_SCOPES", "profile email", "must include openid"),
    ],
)
def test_a_setting_that_cannot_work_is_named(monkeypatch, name, value, message):
    for n, v in {**OIDC_ENV, name: value}.items():
        monkeypatch.setenv(n, v)
    with pytest.raises(ConfigError, match=message):
        oidc_from_env()


def test_ldap_group_dns_map_to_roles_whole():
    assert parse_role_map("X", "cn=ops,ou=groups,dc=example,dc=net=Operator") == {
        "cn=ops,ou=groups,dc=example,dc=net": "Operator"
    }


def test_manage_py_stops_with_one_line_naming_a_bad_setting(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "OKTOSCRIPTS_DATA_DIR": str(tmp_path),
        **OIDC_ENV,
        "OKTOSCRIPTS_OIDC_ROLES": "okto=Boss",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "OKTOSCRIPTS_OIDC_ROLES: 'Boss' is not a role" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def provider_down(settings, db):
    """OpenID Connect configured, its provider not answering (a closed port)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SSO_OIDC = OIDCConfig(
        issuer=f"http://127.0.0.1:{free_port()}",
        client_id="okto",
        client_secret="s",
        roles={"a": "Admin"},
        label="Corp ID",
        timeout_s=2,
    )
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, OIDC_BACKEND]
    discovery.forget()
    yield
    discovery.forget()


def test_the_local_admin_signs_in_while_the_provider_is_down(provider_down):
    get_user_model().objects.create_superuser("admin", "", "Break-glass-pass-91")
    client = Client()
    assert b"Sign in with Corp ID" in client.get("/login/").content
    page = client.post(
        "/login/", {"username": "admin", "password": "Break-glass-pass-91"}, follow=True
    )
    assert page.redirect_chain[-1][0] == "/scripts/"


def test_the_provider_being_down_is_said_on_the_sign_in_page(provider_down):
    page = Client().get("/oidc/authenticate/", follow=True)
    assert page.redirect_chain[-1][0] == "/login/"
    assert b"Sign-in refused: the identity provider cannot be reached" in page.content
    assert AuditEvent.objects.filter(action="sign-in.refused", details__method="oidc").exists()


@pytest.mark.django_db
def test_without_oidc_its_routes_are_not_there_and_the_page_has_no_button(settings):
    settings.SSO_OIDC = None
    assert Client().get("/oidc/authenticate/").status_code == 404
    assert Client().get("/oidc/callback/?code=x&state=y").status_code == 404
    assert b"/oidc/" not in Client().get("/login/").content
