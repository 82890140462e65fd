"""The file store page: firmware images and configuration files CPEs
download (oktoscripts/filestore). Every role sees the list; Operators and
Admins (who may run scripts, hence push firmware) upload and delete. A script
asks for a stored file in a Download with the URL ``store:<name>``."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ide.access import requires
from oktoscripts.roles import Capability, can
from oktoscripts.scripts import audit


def _store():  # noqa: ANN202 - oktoscripts.filestore.store.FileStore
    from oktoscripts.devices.client import default_registry
    from oktoscripts.filestore.store import FileStore

    store = FileStore(default_registry().db)
    store.ensure_indexes()
    return store


def audit_upload(user: object, stored: object, **details: object) -> None:
    """The audit event of an upload (this page's, or the REST API's)."""
    audit.record(
        user,
        "file.upload",
        stored.name,
        size=stored.size,
        sha256=stored.sha256,
        file_type=stored.file_type,
        **details,
    )


@requires(Capability.READ)
def file_list(request: HttpRequest) -> HttpResponse:
    from oktoscripts.filestore.store import FILE_TYPES

    error = ""
    try:
        files = _store().list()
    except Exception as exc:  # noqa: BLE001 - MongoDB down: say so, keep the page
        files, error = [], f"The device database cannot be reached: {exc}"
    return render(
        request,
        "ide/files.html",
        {
            "files": files,
            "error": error,
            "file_types": FILE_TYPES,
            "may_upload": can(request.user, Capability.RUN),
        },
    )


@requires(Capability.RUN)
@require_POST
def file_upload(request: HttpRequest) -> HttpResponse:
    from oktoscripts.filestore.store import FileStoreError

    upload = request.FILES.get("file")
    name = request.POST.get("name", "").strip() or (upload.name if upload else "")
    if upload is None:
        messages.error(request, "Choose a file to upload.")
        return redirect("files")
    try:
        stored = _store().put(
            name, upload, request.POST.get("file_type", ""), request.user.get_username()
        )
    except FileStoreError as exc:
        messages.error(request, str(exc))
        return redirect("files")
    audit_upload(request.user, stored)
    messages.success(
        request,
        f"Stored “{stored.name}” ({stored.size} bytes): download it "
        f"with the URL store:{stored.name}.",
    )
    return redirect("files")


@requires(Capability.RUN)
@require_POST
def file_delete(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "")
    if _store().delete(name):
        audit.record(request.user, "file.delete", name)
        messages.success(request, f"Deleted “{name}”.")
    return redirect("files")
