"""Device credentials (Admin): the username/password a CPE or USP agent
authenticates with, and the devices it speaks for (the one its username names,
and the serials it is bound to). Passwords are never shown or stored in clear
(the devices helper's CredentialStore keeps scrypt hashes and Digest HA1s)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ide.access import requires
from oktoscripts.roles import Capability
from oktoscripts.scripts import audit


def _store():  # noqa: ANN202 - oktoscripts.devices.credentials.CredentialStore
    from oktoscripts.devices.client import default_credentials

    return default_credentials()


@requires(Capability.ADMIN)
def credential_list(request: HttpRequest) -> HttpResponse:
    error = ""
    try:
        bindings = _store().bindings()
    except Exception as exc:  # noqa: BLE001 - MongoDB down: say so, keep the page
        bindings, error = [], f"The device database cannot be reached: {exc}"
    rows = [{"username": b.username, "devices": sorted(b.serials)} for b in bindings]
    return render(request, "ide/credentials.html", {"credentials": rows, "error": error})


@requires(Capability.ADMIN)
@require_POST
def credential_set(request: HttpRequest) -> HttpResponse:
    from oktoscripts.devices.credentials import CredentialError

    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    # Serials the credential also speaks for; none given: those it has stay.
    devices = request.POST.get("devices", "").replace(",", " ").split() or None
    try:
        created = _store().create_or_update(username, password, devices=devices)
    except CredentialError as exc:
        messages.error(request, str(exc))
        return redirect("credentials")
    audit.record(request.user, "credential.create" if created else "credential.update", username)
    messages.success(request, f"{'Created' if created else 'Changed'} the credential “{username}”.")
    return redirect("credentials")


@requires(Capability.ADMIN)
@require_POST
def credential_delete(request: HttpRequest) -> HttpResponse:
    username = request.POST.get("username", "")
    if _store().delete(username):
        audit.record(request.user, "credential.delete", username)
        messages.success(request, f"Deleted the credential “{username}”.")
    return redirect("credentials")
