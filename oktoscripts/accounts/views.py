"""The sign-in page: the local form, and the provider's button when configured."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import LoginView


class SignInView(LoginView):
    template_name = "login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        oidc = getattr(settings, "SSO_OIDC", None)
        context["oidc_label"] = oidc.label if oidc else ""
        context["ldap_on"] = getattr(settings, "SSO_LDAP", None) is not None
        return context
