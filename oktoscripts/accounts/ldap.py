"""LDAP sign-in on the sign-in form, on django-auth-ldap (optional: ``oktoscripts[ldap]``).

The username and password typed on the sign-in page are checked by binding
as the user found under ``OKTOSCRIPTS_LDAP_USER_BASE``; their groups under
``OKTOSCRIPTS_LDAP_GROUP_BASE`` give the role at every sign-in, as for
OpenID Connect. The password is checked by the directory, never stored
here, and goes through sign-in throttling like a local one. A local account
(one the directory did not create) is never signed in to by the directory,
even under the same name: the break-glass ``admin`` stays local.
"""

from __future__ import annotations

from typing import Any

import django_auth_ldap.config as ldap_config
import ldap
from django.conf import settings
from django.http import HttpRequest
from django_auth_ldap.backend import LDAPBackend as DirectoryBackend

from oktoscripts.accounts import roles
from oktoscripts.accounts.config import LDAP_GROUP_TYPES, LDAPConfig
from oktoscripts.accounts.models import ExternalIdentity
from oktoscripts.accounts.signin import Refused, record_refusal


def django_auth_ldap_settings(cfg: LDAPConfig) -> dict[str, Any]:
    """Our LDAPConfig as django-auth-ldap's AUTH_LDAP_* settings (without the prefix)."""
    group_type = getattr(ldap_config, LDAP_GROUP_TYPES[cfg.group_type])()
    group_class = {
        "posixGroup": "posixGroup",
        "groupOfUniqueNames": "groupOfUniqueNames",
        "groupOfNames": "groupOfNames",
    }.get(cfg.group_type, "group")
    return {
        "SERVER_URI": cfg.uri,
        "BIND_DN": cfg.bind_dn,
        "BIND_PASSWORD": cfg.bind_password,
        "START_TLS": cfg.start_tls,
        "USER_SEARCH": ldap_config.LDAPSearch(cfg.user_base, ldap.SCOPE_SUBTREE, cfg.user_filter),
        "GROUP_SEARCH": ldap_config.LDAPSearch(
            cfg.group_base, ldap.SCOPE_SUBTREE, f"(objectClass={group_class})"
        ),
        "GROUP_TYPE": group_type,
        "USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "ALWAYS_UPDATE_USER": True,
        "CONNECTION_OPTIONS": {ldap.OPT_NETWORK_TIMEOUT: 10, ldap.OPT_TIMEOUT: 10},
    }


class LDAPBackend(DirectoryBackend):
    """django-auth-ldap, configured from SSO_LDAP, with the platform's roles."""

    @property
    def default_settings(self) -> dict[str, Any]:
        return django_auth_ldap_settings(settings.SSO_LDAP)

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        self.request = request
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[Any, bool]:
        user, built = super().get_or_build_user(username, ldap_user)
        if (
            not built
            and not ExternalIdentity.objects.filter(
                user=user, source=ExternalIdentity.LDAP
            ).exists()
        ):
            self._refuse(
                Refused(
                    f"{user.get_username()!r} is a local account here; the "
                    "directory cannot sign in to it",
                    who=user,
                )
            )
            raise ldap_user.AuthenticationFailed("a local account of the same name")
        return user, built

    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> Any:
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        ExternalIdentity.objects.update_or_create(
            user=user,
            defaults={
                "source": ExternalIdentity.LDAP,
                "issuer": settings.SSO_LDAP.uri,
                "subject": ldap_user.dn,
            },
        )
        try:
            roles.settle(user, ldap_user.group_dns, settings.SSO_LDAP.roles, "ldap")
        except Refused as refusal:
            self._refuse(refusal)
            return None
        return user

    def _refuse(self, refusal: Refused) -> None:
        if self.request is not None:
            record_refusal(self.request, "ldap", refusal)
