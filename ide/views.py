"""The start page: the script list is where people work."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from ide.access import requires
from oktoscripts.roles import Capability


@requires(Capability.READ)
def home(request: HttpRequest) -> HttpResponse:
    return redirect("scripts")
