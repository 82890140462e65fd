"""The Lua API reference page: the same source as docs/lua-api.md
(oktoscripts/bindings/reference.py, from the binding declarations)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ide.access import requires
from ide.completion import LUA_STANDARD
from oktoscripts.bindings import reference as api_reference
from oktoscripts.roles import Capability


@requires(Capability.READ)
def reference(request: HttpRequest) -> HttpResponse:
    standard = [{"signature": s, "doc": d} for s, d in LUA_STANDARD.values()]
    return render(
        request, "ide/reference.html", {"ref": api_reference.reference(), "standard": standard}
    )
