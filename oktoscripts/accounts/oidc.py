"""OpenID Connect sign-in (authorization code flow with PKCE), on mozilla-django-oidc.

What this adds to the library: the endpoints come from the provider's
discovery document; nothing reaches the provider unless someone signs in
with it (so the local sign-in works while it is down); the ID token's issuer
and audience are checked; a person is found by (issuer, subject) and never
takes an account the provider did not create; the role comes from a claim at
every sign-in (``oktoscripts.accounts.roles``); and each refusal is audited
and explained on the sign-in page instead of an error page.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from oktoscripts.accounts import discovery, roles
from oktoscripts.accounts.config import OIDCConfig
from oktoscripts.accounts.models import ExternalIdentity
from oktoscripts.accounts.signin import Refused, record_refusal


def config() -> OIDCConfig | None:
    return getattr(settings, "SSO_OIDC", None)


def setting(name: str, *default: Any) -> Any:
    """mozilla-django-oidc's settings, from our OIDCConfig (Django settings else)."""
    cfg = config()
    if cfg is not None:
        ours = {
            "OIDC_RP_CLIENT_ID": cfg.client_id,
            "OIDC_RP_CLIENT_SECRET": cfg.client_secret,
            "OIDC_RP_SCOPES": cfg.scopes,
            "OIDC_RP_SIGN_ALGO": cfg.sign_algo,
            "OIDC_VERIFY_SSL": cfg.verify_tls,
            "OIDC_TIMEOUT": cfg.timeout_s,
            "OIDC_USE_PKCE": True,
            "OIDC_TOKEN_USE_BASIC_AUTH": True,  # client_secret_basic: every provider's default
        }
        if name in ours:
            return ours[name]
    return import_from_settings(name, *default)


def _groups(claims: dict) -> list[str]:
    value = claims.get(config().groups_claim, [])
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


class OIDCBackend(OIDCAuthenticationBackend):
    """Signs in the person the provider vouches for, in the callback view only."""

    get_settings = staticmethod(setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's __init__: Django builds every backend for each
        # password sign-in too, and that must not depend on the provider.
        self.UserModel = get_user_model()

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        # Only the callback view (which passes the nonce it kept) may exchange
        # a code: never a password form that someone sent ?code=...&state=...
        cfg = config()
        if request is None or cfg is None or "nonce" not in kwargs:
            return None
        self.configure(cfg)
        return super().authenticate(request, **kwargs)

    def configure(self, cfg: OIDCConfig) -> None:
        """What the library's __init__ would read: the provider's endpoints (discovered)."""
        found = discovery.endpoints(cfg)
        self.OIDC_OP_TOKEN_ENDPOINT = found.token
        self.OIDC_OP_USER_ENDPOINT = found.userinfo
        self.OIDC_OP_JWKS_ENDPOINT = found.jwks
        self.OIDC_RP_CLIENT_ID = cfg.client_id
        self.OIDC_RP_CLIENT_SECRET = cfg.client_secret
        self.OIDC_RP_SIGN_ALGO = cfg.sign_algo
        self.OIDC_RP_IDP_SIGN_KEY = None

    def verify_token(self, token: str, **kwargs: Any) -> dict:
        """Signature, expiry and nonce (the library), then issuer and audience."""
        payload = super().verify_token(token, **kwargs)
        if "nonce" in kwargs:  # the ID token (not a signed userinfo answer)
            cfg = config()
            if str(payload.get("iss", "")).rstrip("/") != cfg.issuer:
                raise SuspiciousOperation(f"ID token issued by {payload.get('iss')!r}")
            audience = payload.get("aud")
            audience = [audience] if isinstance(audience, str) else audience or []
            if cfg.client_id not in audience:
                raise SuspiciousOperation("ID token issued to another client")
        return payload

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict) -> Any:
        claims = self.get_userinfo(access_token, id_token, payload)
        if str(claims.get("sub")) != str(payload.get("sub")):
            raise Refused("the provider's userinfo describes another person than its ID token")
        # Claims may come in the ID token only (groups often do), or in userinfo.
        return admit({**payload, **claims})


def admit(claims: dict) -> Any:
    """The user (found or created) for verified claims, with the role their
    groups give; Refused when there is none or the account is not theirs."""
    cfg = config()
    subject, groups = str(claims["sub"]), _groups(claims)
    identity = (
        ExternalIdentity.objects.select_related("user")
        .filter(source=ExternalIdentity.OIDC, issuer=cfg.issuer, subject=subject)
        .first()
    )
    if identity is not None:
        user = identity.user
    else:
        username = str(claims.get(cfg.username_claim) or "").strip()
        if not username:
            raise Refused(f"the provider sent no {cfg.username_claim!r} claim")
        if roles.role_for(groups, cfg.roles) is None:
            # Not even an account for people the platform gives nothing to.
            raise roles.no_role(groups, who=username)
        user = _create(username, subject, claims)
    if not user.is_active:
        raise Refused("this account is deactivated", who=user)
    roles.settle(user, groups, cfg.roles, "oidc")
    return user


def _create(username: str, subject: str, claims: dict) -> Any:
    User = get_user_model()
    taken = Refused(
        f"an account named {username!r} already exists here and was not made by "
        "this provider; an administrator can rename or delete it",
        who=username,
    )
    if User.objects.filter(username__iexact=username).exists():
        raise taken
    try:
        with transaction.atomic():
            user = User(
                username=username,
                email=claims.get("email", "") or "",
                first_name=str(claims.get("given_name", ""))[:150],
                last_name=str(claims.get("family_name", ""))[:150],
            )
            user.set_unusable_password()  # never a local sign-in; only through the provider
            user.full_clean(exclude=["password"])
            user.save()
            ExternalIdentity.objects.create(
                user=user, source=ExternalIdentity.OIDC, issuer=config().issuer, subject=subject
            )
    except IntegrityError as exc:  # the same person signing in twice at once
        raise taken from exc
    except ValidationError as exc:
        raise Refused(f"{username!r} cannot be a username here", who=username) from exc
    return user


class StartView(OIDCAuthenticationRequestView):
    """``/oidc/authenticate/``: off to the provider, with state, nonce and PKCE in the session."""

    get_settings = staticmethod(setting)

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the endpoint is discovered in get(), per request

    def get(self, request: HttpRequest) -> HttpResponse:
        cfg = config()
        if cfg is None:
            raise Http404("single sign-on is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = discovery.endpoints(cfg).authorization
        except discovery.ProviderUnavailable as exc:
            return refuse(request, Refused(f"the identity provider cannot be reached ({exc})"))
        self.OIDC_RP_CLIENT_ID = cfg.client_id
        return super().get(request)


class CallbackView(OIDCAuthenticationCallbackView):
    """``/oidc/callback/``: the provider's answer; signs in, or says why not."""

    get_settings = staticmethod(setting)

    def get(self, request: HttpRequest) -> HttpResponse:
        if config() is None:
            raise Http404("single sign-on is not configured")
        try:
            return super().get(request)
        except Refused as exc:
            return refuse(request, exc)
        except SuspiciousOperation as exc:  # state, nonce, signature, issuer, audience
            return refuse(request, Refused(f"the provider's answer does not check out ({exc})"))
        except (requests.RequestException, discovery.ProviderUnavailable) as exc:
            return refuse(request, Refused(f"the identity provider refused or failed ({exc})"))

    def login_failure(self) -> HttpResponse:
        # The provider said no (error=access_denied...), or nothing to sign in with.
        request = self.request
        reason = (
            request.GET.get("error_description")
            or request.GET.get("error")
            or "the sign-in did not complete; start again"
        )
        return refuse(request, Refused(reason))


def refuse(request: HttpRequest, refusal: Refused) -> HttpResponse:
    record_refusal(request, "oidc", refusal)
    return redirect(settings.LOGIN_URL)
