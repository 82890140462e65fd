"""A real OpenID Provider and the platform's real web process configured for it.

Both are HTTP servers of their own; the tests are the browser, a requests
session that follows every redirect of the authorization code flow by hand.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
import requests

from tests.auth.provider_process import OpenIDProvider
from tests.browser_site import running_site

ADMIN_PASSWORD = "Break-glass-pass-91"  # the local break-glass admin
OP_PASSWORD = "provider-pass-1234"
ROLE_MAP = "okto-viewers=Viewer; okto-authors=Author; okto-operators=Operator; okto-admins=Admin"
LABEL = "Test IdP"
TEST_CLIENT_CALLBACK = "http://testserver/oidc/callback/"


@pytest.fixture(scope="session")
def provider(tmp_path_factory) -> Iterator[OpenIDProvider]:
    op = OpenIDProvider(tmp_path_factory.mktemp("provider"))
    op.start()
    yield op
    op.stop()


def oidc_settings(provider: OpenIDProvider) -> dict[str, str]:
    """The environment that points the platform at ``provider``."""
    return {
        "OKTOSCRIPTS_OIDC_ISSUER": provider.issuer,
        "OKTOSCRIPTS_OIDC_CLIENT_ID": "oktoscripts",
        "OKTOSCRIPTS_OIDC_CLIENT_SECRET": "client-secret-for-tests",
        "OKTOSCRIPTS_OIDC_SCOPES": "openid profile email groups",
        "OKTOSCRIPTS_OIDC_ROLES": ROLE_MAP,
        "OKTOSCRIPTS_OIDC_LABEL": LABEL,
    }


@pytest.fixture(scope="session")
def sso_site(tmp_path_factory, nats_url, mongo_uri, provider) -> Iterator[str]:
    """The platform's web process with OpenID Connect pointed at ``provider``,
    and the local superuser ``breakglass``; the provider knows its callback."""
    settings = oidc_settings(provider)
    setup = (
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_superuser('breakglass', '', {ADMIN_PASSWORD!r})\n"
    )
    with running_site(
        tmp_path_factory.mktemp("sso-site"), nats_url, mongo_uri, setup, {}, settings=settings
    ) as base:
        # The second callback is the test process's own Django (test client).
        callbacks = f"{base}/oidc/callback/ {TEST_CLIENT_CALLBACK}"
        assert provider.register_client(callbacks) == (
            settings["OKTOSCRIPTS_OIDC_CLIENT_ID"],
            settings["OKTOSCRIPTS_OIDC_CLIENT_SECRET"],
        )
        yield base


def form_field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field in: {page[:500]}"
    return html.unescape(found.group(1))


def follow(http: requests.Session, url: str, stop_before: str = "") -> requests.Response | str:
    """GET ``url`` and follow redirects; returns the last response, or the URL
    starting with ``stop_before`` that a redirect pointed to (not fetched)."""
    for _ in range(20):
        if stop_before and url.startswith(stop_before):
            return url
        response = http.get(url, allow_redirects=False)
        if response.status_code not in (301, 302, 303):
            return response
        url = urljoin(url, response.headers["Location"])
    raise AssertionError("too many redirects")


def provider_sign_in(
    http: requests.Session, page: requests.Response, username: str, stop_before: str = ""
) -> requests.Response | str:
    """Fill in the provider's sign-in form ``page`` and follow where it leads."""
    assert "Test identity provider" in page.text, page.text[:500]
    response = http.post(
        page.url,
        allow_redirects=False,
        data={
            "csrfmiddlewaretoken": form_field(page.text, "csrfmiddlewaretoken"),
            "username": username,
            "password": OP_PASSWORD,
            "next": form_field(page.text, "next"),
        },
    )
    assert response.status_code == 302, f"the provider refused {username}: {response.text[:300]}"
    return follow(http, urljoin(page.url, response.headers["Location"]), stop_before)


def callback_url(site: str, username: str, http: requests.Session | None = None) -> str:
    """Start a sign-in at ``site`` and sign in at the provider: the URL the
    provider sends the browser back to (code and state), not yet followed."""
    http = http or requests.Session()
    page = follow(http, site + "/oidc/authenticate/")
    url = provider_sign_in(http, page, username, stop_before=site + "/oidc/callback/")
    assert isinstance(url, str) and "code=" in url and "state=" in url, url
    return url


def sso_sign_in(site: str, username: str) -> tuple[requests.Session, requests.Response]:
    """The whole flow as a browser goes through it; the page it ends on."""
    http = requests.Session()
    page = follow(http, site + "/oidc/authenticate/")
    return http, provider_sign_in(http, page, username)


def local_sign_in(
    site: str, username: str, password: str
) -> tuple[requests.Session, requests.Response]:
    http = requests.Session()
    page = http.get(site + "/login/")
    response = http.post(
        site + "/login/",
        data={
            "csrfmiddlewaretoken": form_field(page.text, "csrfmiddlewaretoken"),
            "username": username,
            "password": password,
            "next": "",
        },
    )
    return http, response


def signed_in_as(page: requests.Response) -> tuple[str, str] | None:
    """(username, role) in the page's top bar, or None on the sign-in page."""
    found = re.search(
        r'>([^<>]+)</a><span class="role" title="your role">([^<]+)</span>', page.text
    )
    return (html.unescape(found.group(1)), found.group(2)) if found else None


def refusal(page: requests.Response) -> str:
    """The "Sign-in refused: ..." message on the sign-in page, or ''."""
    found = re.search(r'<li class="error">(Sign-in refused: [^<]*)</li>', page.text)
    return html.unescape(found.group(1)) if found else ""
