"""The file store page: everyone sees the files, Operators and Admins upload
and delete (audited), and what is uploaded is what the ACS will serve."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from oktoscripts.scripts.models import AuditEvent
from oktoscripts.sim.cwmp_day2 import firmware_image


@pytest.fixture
def store(mongo_uri):
    from oktoscripts.devices.client import default_registry
    from oktoscripts.filestore.store import FileStore

    files = FileStore(default_registry().db)
    files.files.delete_many({})
    files.chunks.delete_many({})
    yield files
    files.files.delete_many({})
    files.chunks.delete_many({})


def _upload(client, name, data=None, file_type="1 Firmware Upgrade Image"):
    data = data if data is not None else firmware_image("9.9.9")
    return client.post(
        "/files/upload",
        {"file": SimpleUploadedFile("x.bin", data), "name": name, "file_type": file_type},
    )


def test_operators_upload_and_delete_and_everyone_sees_the_list(client_for, store):
    operator = client_for("operator")
    assert _upload(operator, "fw-9.9.9.bin").status_code == 302
    stored = store.by_name("fw-9.9.9.bin")
    assert stored is not None and store.content(stored.id) == firmware_image("9.9.9")
    assert AuditEvent.objects.filter(action="file.upload", target="fw-9.9.9.bin").exists()
    page = client_for("viewer").get("/files/").content.decode()
    assert "fw-9.9.9.bin" in page and "file_upload" not in page and "/files/upload" not in page
    assert "/files/upload" in operator.get("/files/").content.decode()
    assert operator.post("/files/delete", {"name": "fw-9.9.9.bin"}).status_code == 302
    assert store.by_name("fw-9.9.9.bin") is None
    assert AuditEvent.objects.filter(action="file.delete", target="fw-9.9.9.bin").exists()


@pytest.mark.parametrize("role", ["viewer", "author"])
def test_other_roles_cannot_upload_or_delete(client_for, store, role):
    client = client_for(role)
    assert _upload(client, "evil.bin").status_code == 403
    assert client.post("/files/delete", {"name": "evil.bin"}).status_code == 403
    assert store.by_name("evil.bin") is None
    assert client_for("nobody").get("/files/").status_code == 403


def test_bad_uploads_are_refused_with_a_message(client_for, store):
    admin = client_for("admin")
    response = _upload(admin, "../etc/passwd")
    assert response.status_code == 302 and store.list() == []
    page = admin.get("/files/").content.decode()
    assert "a file name is 1-128 letters" in page
    _upload(admin, "empty.bin", data=b"")
    _upload(admin, "typed.bin", file_type="9 Nonsense")
    assert store.list() == []
