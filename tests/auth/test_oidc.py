"""OpenID Connect sign-in through a real provider (django-oauth-toolkit, its own
server) and the platform's real web process: the authorization code flow
with PKCE, over HTTP, followed redirect by redirect."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.test import Client

from oktoscripts.accounts import discovery
from oktoscripts.accounts.config import OIDC_BACKEND, OIDCConfig, oidc_from_env
from oktoscripts.accounts.oidc import OIDCBackend
from oktoscripts.roles import role_of
from tests.auth.conftest import (
    ADMIN_PASSWORD,
    LABEL,
    OP_PASSWORD,
    TEST_CLIENT_CALLBACK,
    callback_url,
    follow,
    local_sign_in,
    oidc_settings,
    provider_sign_in,
    refusal,
    signed_in_as,
    sso_sign_in,
)

pytestmark = pytest.mark.timeout(300)


def _admin(site: str) -> requests.Session:
    http, page = local_sign_in(site, "breakglass", ADMIN_PASSWORD)
    assert signed_in_as(page) == ("breakglass", "Admin")
    return http


def _signed_out(http: requests.Session, site: str) -> bool:
    return "/login/" in http.get(site + "/scripts/").url


def test_the_sign_in_page_offers_the_provider_and_local_accounts(sso_site):
    page = requests.get(sso_site + "/login/?next=/runs/")
    assert f"Sign in with {LABEL}" in page.text
    assert 'href="/oidc/authenticate/?next=/runs/"' in page.text
    assert 'name="password"' in page.text  # the local form stays
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text


def test_first_sign_in_creates_the_user_with_the_role_of_their_group(sso_site, provider):
    provider.person("alice", OP_PASSWORD, ["okto-authors", "staff"])
    http, page = sso_sign_in(sso_site, "alice")
    assert page.url == sso_site + "/scripts/"
    assert signed_in_as(page) == ("alice", "Author")
    assert http.get(sso_site + "/scripts/").status_code == 200

    # Created by the provider: no password of her own here, the provider's does not work.
    _, page = local_sign_in(sso_site, "alice", OP_PASSWORD)
    assert signed_in_as(page) is None and "Wrong username or password" in page.text

    # Audited like every sign-in, with the method.
    audit = _admin(sso_site).get(sso_site + "/audit/?" + urlencode({"actor": "alice"})).text
    assert "sign-in" in audit and "method=oidc" in audit


def test_next_page_is_kept_through_the_provider(sso_site, provider):
    provider.person("nina", OP_PASSWORD, ["okto-viewers"])
    http = requests.Session()
    page = follow(http, sso_site + "/oidc/authenticate/?next=/runs/")
    page = provider_sign_in(http, page, "nina")
    assert page.url == sso_site + "/runs/" and signed_in_as(page) == ("nina", "Viewer")


def test_a_user_whose_groups_change_gets_the_new_role_at_the_next_sign_in(sso_site, provider):
    provider.person("bob", OP_PASSWORD, ["okto-operators"])
    assert signed_in_as(sso_sign_in(sso_site, "bob")[1]) == ("bob", "Operator")

    provider.person("bob", OP_PASSWORD, ["okto-admins", "okto-viewers"])  # highest wins
    assert signed_in_as(sso_sign_in(sso_site, "bob")[1]) == ("bob", "Admin")

    provider.person("bob", OP_PASSWORD, ["okto-viewers"])
    http, page = sso_sign_in(sso_site, "bob")
    assert signed_in_as(page) == ("bob", "Viewer")
    assert http.get(sso_site + "/users/").status_code == 403  # no longer an Admin

    # Out of every mapped group: refused, and the role he had is taken away.
    provider.person("bob", OP_PASSWORD, ["marketing"])
    http, page = sso_sign_in(sso_site, "bob")
    assert "none of your groups (marketing) is given a role" in refusal(page)
    assert _signed_out(http, sso_site)
    users = _admin(sso_site).get(sso_site + "/users/").text
    assert re.search(
        r"<td>bob <span [^>]*>\(OpenID Connect\)</span></td>"
        r'<td><span class="badge plain">None</span>',
        users,
    )

    audit = _admin(sso_site).get(sso_site + "/audit/?" + urlencode({"target": "bob"})).text
    assert audit.count("role.change") >= 4  # Operator, Admin, Viewer, None


def test_a_user_in_no_mapped_group_is_refused_and_gets_no_account(sso_site, provider):
    provider.person("carol", OP_PASSWORD, ["marketing", "sales"])
    http, page = sso_sign_in(sso_site, "carol")
    assert page.url == sso_site + "/login/"
    assert refusal(page) == (
        "Sign-in refused: none of your groups (marketing, sales) is "
        "given a role here: ask an administrator"
    )
    assert _signed_out(http, sso_site)

    admin = _admin(sso_site)
    assert "<td>carol" not in admin.get(sso_site + "/users/").text
    audit = admin.get(sso_site + "/audit/?action=sign-in").text
    assert "sign-in.refused" in audit and "carol" in audit


def test_a_wrong_state_is_refused(sso_site, provider):
    provider.person("dave", OP_PASSWORD, ["okto-admins"])
    http = requests.Session()
    url = callback_url(sso_site, "dave", http)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = f"{sso_site}/oidc/callback/?{urlencode({**query, 'state': 'not-the-state'})}"
    page = follow(http, forged)
    assert "does not check out" in refusal(page) and "state" in refusal(page)
    assert _signed_out(http, sso_site)


def test_a_callback_from_another_browser_is_refused(sso_site, provider):
    """An attacker's own code and state, sent to a victim (login CSRF): the
    victim's session never started that sign-in, so nobody is signed in."""
    provider.person("mallory", OP_PASSWORD, ["okto-admins"])
    url = callback_url(sso_site, "mallory")
    victim = requests.Session()
    victim.get(sso_site + "/login/")
    page = follow(victim, url)
    assert refusal(page) and signed_in_as(page) is None
    assert _signed_out(victim, sso_site)


def test_a_callback_used_twice_is_refused(sso_site, provider):
    provider.person("erin", OP_PASSWORD, ["okto-viewers"])
    http = requests.Session()
    url = callback_url(sso_site, "erin", http)
    assert signed_in_as(follow(http, url)) == ("erin", "Viewer")
    assert "does not check out" in refusal(follow(http, url))  # its state is used up


def test_an_id_token_with_another_nonce_is_refused(sso_site, provider):
    """The provider is asked for a token bound to another nonce (as an ID token
    minted for another sign-in would be): the platform's check refuses it."""
    provider.person("frank", OP_PASSWORD, ["okto-admins"])
    http = requests.Session()
    start = http.get(sso_site + "/oidc/authenticate/", allow_redirects=False)
    authorize = urlsplit(start.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert params["nonce"] and params["code_challenge_method"] == "S256"
    tampered = authorize._replace(query=urlencode({**params, "nonce": "another-nonce"})).geturl()
    page = follow(http, tampered)
    page = provider_sign_in(http, page, "frank")
    assert "does not check out" in refusal(page) and "Nonce" in refusal(page)
    assert _signed_out(http, sso_site)


def test_the_provider_cannot_take_a_local_account_of_the_same_name(sso_site, provider):
    provider.person("breakglass", OP_PASSWORD, ["okto-admins"])
    http, page = sso_sign_in(sso_site, "breakglass")
    assert "an account named 'breakglass' already exists here" in refusal(page)
    assert _signed_out(http, sso_site)


def test_the_local_admin_still_signs_in_with_a_password(sso_site):
    http, page = local_sign_in(sso_site, "breakglass", ADMIN_PASSWORD)
    assert signed_in_as(page) == ("breakglass", "Admin")
    audit = http.get(sso_site + "/audit/?" + urlencode({"actor": "breakglass"})).text
    assert "method=password" in audit


def _id_token(provider, site: str, client_id: str, secret: str) -> tuple[str, str]:
    """A real ID token of ``provider`` for the registered client, and its nonce:
    the authorization code flow done by hand, as the platform does it."""
    http = requests.Session()
    verifier, nonce = "v" * 64, "the-nonce"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "scope": "openid groups",
            "redirect_uri": site + "/oidc/callback/",
            "state": "s",
            "nonce": nonce,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
    )
    page = follow(http, f"{provider.base}/o/authorize/?{query}")
    url = provider_sign_in(http, page, "ivan", stop_before=site + "/oidc/callback/")
    code = parse_qs(urlsplit(url).query)["code"][0]
    answer = requests.post(
        provider.base + "/o/token/",
        auth=(client_id, secret),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": site + "/oidc/callback/",
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["id_token"], nonce


def test_id_tokens_of_another_issuer_or_client_are_refused(sso_site, provider, settings):
    provider.person("ivan", OP_PASSWORD, ["okto-admins"])
    token, nonce = _id_token(provider, sso_site, "oktoscripts", "client-secret-for-tests")
    right = OIDCConfig(
        issuer=provider.issuer,
        client_id="oktoscripts",
        client_secret="x",
        roles={"okto-admins": "Admin"},
    )
    cases = {
        "right": right,
        # The same provider under another name: its discovery says that name, the token not.
        "issuer": replace(right, issuer=provider.issuer.replace("127.0.0.1", "localhost")),
        "client": replace(right, client_id="another-client"),
    }
    seen = {}
    for case, cfg in cases.items():
        settings.SSO_OIDC = cfg
        discovery.forget()
        backend = OIDCBackend()
        backend.configure(cfg)
        try:
            seen[case] = backend.verify_token(token, nonce=nonce)["sub"]
        except SuspiciousOperation as exc:
            seen[case] = str(exc)
    discovery.forget()
    assert seen["right"].isdigit()
    assert seen["issuer"] == f"ID token issued by {provider.issuer!r}"
    assert seen["client"] == "ID token issued to another client"


@pytest.mark.django_db
def test_an_address_locked_by_wrong_passwords_still_signs_in_through_the_provider(
    sso_site, provider, settings, monkeypatch
):
    """Throttling is for passwords: a lock on an address (people behind one NAT)
    does not stop sign-in through the provider, which checks no password here.
    The test process's own Django, configured from the same environment."""
    for name, value in oidc_settings(provider).items():
        monkeypatch.setenv(name, value)
    settings.SSO_OIDC = oidc_from_env()
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, OIDC_BACKEND]
    settings.AXES_FAILURE_LIMIT = 2
    discovery.forget()
    client = Client()
    for _ in range(2):
        client.post("/login/", {"username": "someone", "password": "guess"})
    assert client.post("/login/", {"username": "someone", "password": "guess"}).status_code == 429

    provider.person("judy", OP_PASSWORD, ["okto-authors"])
    start = client.get("/oidc/authenticate/")
    http = requests.Session()
    url = provider_sign_in(
        http, follow(http, start["Location"]), "judy", stop_before=TEST_CLIENT_CALLBACK
    )
    done = client.get(url.removeprefix("http://testserver"), follow=True)
    discovery.forget()
    assert done.redirect_chain[-1][0] == "/scripts/"
    assert role_of(get_user_model().objects.get(username="judy")) == "Author"
