"""Enforcing roles on pages: ``@requires(Capability.X)`` on every view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from oktoscripts.roles import Capability, can


def requires(capability: Capability) -> Callable:
    """Sign-in required; without the capability the page answers 403 with a clear message."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not can(request.user, capability):
                return forbidden(request, capability)
            return view(request, *args, **kwargs)

        wrapper.capability = capability  # read by the role tests
        return wrapper

    return decorate


WHAT = {
    Capability.READ: "see this page",
    Capability.EDIT: "create or edit scripts",
    Capability.RUN: "run or cancel scripts",
    Capability.ADMIN: "administer the platform",
}


def forbidden(request: HttpRequest, capability: Capability) -> HttpResponse:
    return render(
        request,
        "ide/forbidden.html",
        {"what": WHAT[capability], "capability": capability},
        status=403,
    )
