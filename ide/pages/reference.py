"""The Lua API reference page, generated from the binding registry."""

from __future__ import annotations

from itertools import groupby

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ide.access import requires
from ide.completion import LUA_STANDARD, api_entries
from oktoscripts.roles import Capability

CATEGORY_TITLES = {
    "devices": "Devices", "cwmp": "TR-069 (CWMP)", "usp": "TR-369 (USP)",
    "events": "Events", "util": "Utilities",
}


@requires(Capability.READ)
def reference(request: HttpRequest) -> HttpResponse:
    entries = sorted(api_entries(), key=lambda b: (list(CATEGORY_TITLES).index(b["category"])
                                                    if b["category"] in CATEGORY_TITLES else 99,
                                                    b["name"]))
    sections = [
        {"id": cat, "title": CATEGORY_TITLES.get(cat, cat), "bindings": list(items)}
        for cat, items in groupby(entries, key=lambda b: b["category"])
    ]
    standard = [{"signature": s, "doc": d} for s, d in LUA_STANDARD.values()]
    return render(request, "ide/reference.html", {"sections": sections, "standard": standard})
