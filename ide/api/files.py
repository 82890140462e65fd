"""REST endpoints of the file store (oktoscripts/filestore): the firmware
images and configuration files CPEs download (``store:<name>`` in a Download).

As on the Files page: every role that may read lists the files and reads a
file's metadata; Operators and Admins (who run scripts, hence push firmware)
upload and delete, each audited. The content itself goes to CPEs only, under
the ACS's signed URLs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import File, Form, Router, Schema
from ninja.files import UploadedFile
from pymongo.errors import PyMongoError

from ide.api.auth import ApiError, needs
from ide.pages.files import audit_upload
from oktoscripts.filestore.store import (
    FILE_TYPES,
    MAX_BYTES,
    FileStore,
    FileStoreError,
    StoredFile,
)
from oktoscripts.roles import Capability
from oktoscripts.scripts import audit

router = Router(tags=["files"])
READ, WRITE = needs(Capability.READ), needs(Capability.RUN)


class StoredFileOut(Schema):
    name: str
    size: int
    sha256: str
    file_type: str
    uploaded_by: str
    uploaded_at: datetime
    url: str  # what a script's Download gives as its URL


class FileList(Schema):
    files: list[StoredFileOut]


class FileDeleted(Schema):
    deleted: str


def _store() -> FileStore:
    from oktoscripts.devices.client import default_registry

    store = _database(lambda: FileStore(default_registry().db))
    _database(store.ensure_indexes)
    return store


def _database(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except PyMongoError as exc:
        raise ApiError(f"the device database cannot be reached: {exc}", 503) from None


def _out(stored: StoredFile) -> dict[str, Any]:
    return {**dataclasses.asdict(stored), "url": f"store:{stored.name}"}


@router.get("/files", response=FileList, summary="List the stored files", **READ)
def list_files(request: HttpRequest) -> dict:
    return {"files": [_out(f) for f in _database(_store().list)]}


@router.get("/files/{name}", response=StoredFileOut, summary="A stored file's metadata", **READ)
def file_metadata(request: HttpRequest, name: str) -> dict:
    stored = _database(_store().by_name, name)
    if stored is None:
        raise ApiError(f"no stored file named {name!r}", 404)
    return _out(stored)


@router.post(
    "/files",
    response={201: StoredFileOut},
    summary="Upload a file (replaces a file of that name)",
    description=f"multipart/form-data: file, name (default: the file's own name), "
    f"file_type (one of: {', '.join(FILE_TYPES)}). At most {MAX_BYTES // 2**20} MiB.",
    **WRITE,
)
def upload_file(
    request: HttpRequest,
    file: File[UploadedFile],
    file_type: Form[str] = FILE_TYPES[0],
    name: Form[str] = "",
) -> tuple[int, dict]:
    if file.size is not None and file.size > MAX_BYTES:
        raise ApiError(f"files are at most {MAX_BYTES // 2**20} MiB", 413)
    try:
        stored = _database(
            _store().put,
            name.strip() or file.name or "",
            file,
            file_type,
            request.user.get_username(),
        )
    except FileStoreError as exc:
        raise ApiError(str(exc)) from None
    audit_upload(request.user, stored, via="api")
    return 201, _out(stored)


@router.delete("/files/{name}", response=FileDeleted, summary="Delete a stored file", **WRITE)
def delete_file(request: HttpRequest, name: str) -> dict:
    if not _database(_store().delete, name):
        raise ApiError(f"no stored file named {name!r}", 404)
    audit.record(request.user, "file.delete", name, via="api")
    return {"deleted": name}
