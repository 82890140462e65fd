"""LDAP sign-in on the sign-in form, against a real OpenLDAP slapd started
for these tests; the directory's groups give the role at every sign-in."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from oktoscripts.accounts.config import LDAP_BACKEND, LDAPConfig
from oktoscripts.roles import role_of
from oktoscripts.scripts.models import AuditEvent
from tests.auth import slapd_process
from tests.auth.slapd_process import GROUPS, PEOPLE, group_dn

pytestmark = [
    pytest.mark.skipif(bool(slapd_process.missing()), reason=slapd_process.missing()),
    pytest.mark.django_db,
]

PASSWORD = "directory-pass-1234"


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    server = slapd_process.Directory(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


@pytest.fixture
def ldap_on(settings, directory):
    """The platform configured as OKTOSCRIPTS_LDAP_* would configure it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SSO_LDAP = LDAPConfig(
        uri=directory.uri,
        user_base=PEOPLE,
        group_base=GROUPS,
        roles={
            group_dn("okto-ops").casefold(): "Operator",
            group_dn("okto-admins").casefold(): "Admin",
        },
    )
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, LDAP_BACKEND]
    return directory


def sign_in(username: str, password: str) -> tuple[Client, object]:
    client = Client()
    response = client.post("/login/", {"username": username, "password": password}, follow=True)
    return client, response


def test_a_directory_user_signs_in_with_the_role_of_their_group(ldap_on):
    dn = ldap_on.person("lena", PASSWORD)
    ldap_on.group("okto-ops", [dn])
    client, page = sign_in("lena", PASSWORD)
    assert page.redirect_chain[-1][0] == "/scripts/"
    user = get_user_model().objects.get(username="lena")
    assert role_of(user) == "Operator" and user.email == "lena@example.net"
    assert not user.has_usable_password()  # the directory checks it, nothing is stored
    assert AuditEvent.objects.filter(action="sign-in", actor=user, details__method="ldap").exists()

    _, page = sign_in("lena", "wrong-password")
    assert b"Wrong username or password" in page.content


def test_a_changed_group_gives_the_new_role_and_no_group_refuses(ldap_on):
    dn = ldap_on.person("omar", PASSWORD)
    ldap_on.group("okto-ops", [dn])
    sign_in("omar", PASSWORD)
    omar = get_user_model().objects.get(username="omar")
    assert role_of(omar) == "Operator"

    ldap_on.group("okto-ops", [])
    ldap_on.group("okto-admins", [dn])
    sign_in("omar", PASSWORD)
    assert role_of(omar) == "Admin"

    ldap_on.group("okto-admins", [])
    client, page = sign_in("omar", PASSWORD)
    assert b"Sign-in refused: none of your groups" in page.content
    assert "_auth_user_id" not in client.session
    assert role_of(omar) == "None"
    assert AuditEvent.objects.filter(
        action="sign-in.refused", target="omar", details__method="ldap"
    ).exists()


def test_the_directory_cannot_sign_in_to_a_local_account_of_the_same_name(ldap_on):
    local = get_user_model().objects.create_superuser("root", "", "Local-pass-5678")
    dn = ldap_on.person("root", PASSWORD)
    ldap_on.group("okto-admins", [dn])
    client, page = sign_in("root", PASSWORD)
    assert "_auth_user_id" not in client.session
    assert b"is a local account here" in page.content
    client, page = sign_in("root", "Local-pass-5678")  # the local password still works
    assert client.session["_auth_user_id"] == str(local.pk)


def test_wrong_directory_passwords_are_throttled_like_local_ones(ldap_on, settings):
    settings.AXES_FAILURE_LIMIT = 2
    dn = ldap_on.person("pia", PASSWORD)
    ldap_on.group("okto-ops", [dn])
    for _ in range(2):
        sign_in("pia", "guess")
    _, page = sign_in("pia", PASSWORD)
    assert page.status_code == 429
