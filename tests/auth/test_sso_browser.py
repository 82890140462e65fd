"""Single sign-on in a real browser (Playwright, Debian's chromium): the
sign-in page's provider button works under the Content-Security-Policy and
the whole round trip to the provider ends in the IDE with the mapped role.

Screenshots go to /tmp/ide_shots/sso-*.png.
"""

from __future__ import annotations

from tests.auth.conftest import LABEL, OP_PASSWORD
from tests.browser_site import BROWSER_TEST, shot
from tests.ide.test_xss_browser import WATCH

pytestmark = BROWSER_TEST


def test_sign_in_through_the_provider_in_a_browser_under_the_policy(sso_site, provider, browser):
    provider.person("grace", OP_PASSWORD, ["okto-operators"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.add_init_script(WATCH)
    blocked: list[str] = []
    page.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )

    page.goto(sso_site + "/login/?next=/runs/")
    assert page.inner_text("#sso-sign-in") == f"Sign in with {LABEL}"
    assert page.is_visible("#id_password")  # the local form stays, for the break-glass admin
    shot(page, "sso-1-sign-in")
    page.click("#sso-sign-in")

    page.wait_for_selector("#op-username")
    assert page.url.startswith(provider.base)
    page.fill("#op-username", "grace")
    page.fill("#op-password", OP_PASSWORD)
    page.click("#op-submit")

    page.wait_for_url(sso_site + "/runs/")
    assert page.inner_text(".topbar .role") == "Operator"
    assert "grace" in page.inner_text(".topbar .account")
    assert page.evaluate("window.__csp") == []
    shot(page, "sso-2-signed-in")
    assert blocked == []
