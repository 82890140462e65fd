"""The signed-in user's API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ide.access import requires
from ide.models import ApiToken
from oktoscripts.roles import Capability
from oktoscripts.scripts import audit


@requires(Capability.READ)
def tokens(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "ide/tokens.html",
        {
            "tokens": ApiToken.objects.filter(user=request.user).order_by("-created"),
            "new_token": request.session.pop("new_token", None),
        },
    )


@requires(Capability.READ)
@require_POST
def create_token(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()[:100] or "API token"
    token, raw = ApiToken.issue(request.user, name)
    audit.record(request.user, "token.create", name, hint=token.hint)
    request.session["new_token"] = raw
    return redirect("tokens")


@requires(Capability.READ)
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = ApiToken.objects.filter(user=request.user, pk=token_id).first()
    if token is not None:
        audit.record(request.user, "token.revoke", token.name, hint=token.hint)
        token.delete()
        messages.success(request, f"Revoked “{token.name}”.")
    return redirect("tokens")
