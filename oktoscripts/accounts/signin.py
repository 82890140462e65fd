"""Every sign-in and every refused one in the audit log, and which sign-ins
sign-in throttling counts.

A successful sign-in of any kind (password, LDAP, OpenID Connect) is the
``sign-in`` event, with the method and the address; a single sign-on that is
refused (bad state or nonce, no mapped group, an account it may not take) is
``sign-in.refused`` with the reason, and the same reason is shown on the
sign-in page. Wrong local passwords are django-axes' business (README
"Security").
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from oktoscripts.scripts import audit

log = logging.getLogger(__name__)

METHODS = {
    "django.contrib.auth.backends.ModelBackend": "password",
    "oktoscripts.accounts.ldap.LDAPBackend": "ldap",
    "oktoscripts.accounts.oidc.OIDCBackend": "oidc",
}


class Refused(Exception):
    """A sign-in the platform turns down, with the reason shown to the person."""

    def __init__(self, reason: str, who: Any = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.who = who  # the user, or the name the provider sent, when known


def address(request: HttpRequest | None) -> str:
    return (request.META.get("REMOTE_ADDR", "") if request is not None else "") or "?"


@receiver(user_logged_in, dispatch_uid="oktoscripts.accounts.audit_sign_in")
def audit_sign_in(sender: Any, request: HttpRequest | None, user: Any, **_: Any) -> None:
    method = METHODS.get(getattr(user, "backend", ""), "other")
    audit.record(user, "sign-in", user.get_username(), method=method, address=address(request))


def record_refusal(request: HttpRequest, method: str, refusal: Refused) -> None:
    """Audit, log and show (on the next page) a refused single sign-on."""
    who = refusal.who
    name = who.get_username() if hasattr(who, "get_username") else str(who or "")
    audit.record(
        who or "anonymous",
        "sign-in.refused",
        name,
        method=method,
        reason=refusal.reason,
        address=address(request),
    )
    log.warning(
        "%s sign-in of %r from %s refused: %s",
        method,
        name or "?",
        address(request),
        refusal.reason,
    )
    messages.error(request, f"Sign-in refused: {refusal.reason}")


def checks_no_password(request: HttpRequest, credentials: dict | None) -> bool:
    """django-axes' AXES_WHITELIST_CALLABLE: an OpenID Connect callback checks
    no password, so a refused one never counts towards locking an address
    (people behind one NAT would lock out its password sign-in), and a lock
    set by wrong passwords does not stop the provider's sign-in either."""
    # axes passes password=None along with the callback's nonce and code verifier.
    credentials = credentials or {}
    return "nonce" in credentials and not credentials.get("password")
