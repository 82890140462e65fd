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


# -- the REST API (/api/files) ---------------------------------------------------


def _api_upload(client, name, data=None, file_type="1 Firmware Upgrade Image"):
    data = data if data is not None else firmware_image("7.7.7")
    return client.post(
        "/api/files",
        {"file": SimpleUploadedFile("local-name.bin", data), "name": name, "file_type": file_type},
    )


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_the_api_uploads_lists_describes_and_deletes_for_operators_and_admins(
    client_for, store, role
):
    client = client_for(role)
    response = _api_upload(client, "fw-7.7.7.bin")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "fw-7.7.7.bin" and body["url"] == "store:fw-7.7.7.bin"
    assert body["size"] == len(firmware_image("7.7.7")) and body["uploaded_by"] == role
    stored = store.by_name("fw-7.7.7.bin")
    assert store.content(stored.id) == firmware_image("7.7.7") and body["sha256"] == stored.sha256
    event = AuditEvent.objects.get(action="file.upload", target="fw-7.7.7.bin")
    assert event.actor.get_username() == role and event.details["via"] == "api"
    listed = client.get("/api/files").json()["files"]
    assert [f["name"] for f in listed] == ["fw-7.7.7.bin"]
    assert client.get("/api/files/fw-7.7.7.bin").json()["file_type"] == "1 Firmware Upgrade Image"
    unnamed = _api_upload(client, "")  # no name given: the file's own
    assert unnamed.status_code == 201 and unnamed.json()["name"] == "local-name.bin"
    assert client.delete("/api/files/fw-7.7.7.bin").json() == {"deleted": "fw-7.7.7.bin"}
    assert store.by_name("fw-7.7.7.bin") is None
    assert AuditEvent.objects.filter(action="file.delete", target="fw-7.7.7.bin").exists()
    assert client.delete("/api/files/fw-7.7.7.bin").status_code == 404
    assert client.get("/api/files/fw-7.7.7.bin").status_code == 404


@pytest.mark.parametrize("role", ["viewer", "author"])
def test_the_api_lets_other_roles_read_but_not_write(client_for, store, role):
    store.put("fw-1.bin", firmware_image("1.0"), "1 Firmware Upgrade Image", "someone")
    client = client_for(role)
    assert [f["name"] for f in client.get("/api/files").json()["files"]] == ["fw-1.bin"]
    assert client.get("/api/files/fw-1.bin").json()["uploaded_by"] == "someone"
    refused = _api_upload(client, "evil.bin")
    assert refused.status_code == 403 and "error" in refused.json()
    assert client.delete("/api/files/fw-1.bin").status_code == 403
    assert {f.name for f in store.list()} == {"fw-1.bin"}
    assert not AuditEvent.objects.filter(action__startswith="file.").exists()


def test_the_api_refuses_users_without_a_role_and_anonymous_callers(client_for, client, store):
    store.put("fw-1.bin", firmware_image("1.0"), "1 Firmware Upgrade Image", "someone")
    nobody = client_for("nobody")
    assert nobody.get("/api/files").status_code == 403
    assert nobody.get("/api/files/fw-1.bin").status_code == 403
    assert _api_upload(nobody, "x.bin").status_code == 403
    assert client.get("/api/files").status_code == 401
    assert _api_upload(client, "x.bin").status_code == 401
    assert client.delete("/api/files/fw-1.bin").status_code == 401
    assert {f.name for f in store.list()} == {"fw-1.bin"}


def test_the_api_says_what_is_wrong_with_an_upload(client_for, store):
    admin = client_for("admin")
    for name, data, file_type, says in (
        ("../etc/passwd", None, "1 Firmware Upgrade Image", "a file name is 1-128 letters"),
        ("empty.bin", b"", "1 Firmware Upgrade Image", "empty"),
        ("typed.bin", None, "9 Nonsense", "file type must be one of"),
    ):
        response = _api_upload(admin, name, data, file_type)
        assert response.status_code == 400 and says in response.json()["error"], response.content
    assert store.list() == []


def test_a_multi_megabyte_image_uploaded_through_the_api_is_stored_whole(client_for, store):
    import hashlib
    import os

    from oktoscripts.filestore.store import CHUNK_BYTES

    data = firmware_image("6.0.0", 3 * CHUNK_BYTES + 777) + os.urandom(1000)
    response = _api_upload(client_for("operator"), "fw-6.0.0.bin", data)
    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    stored = store.by_name("fw-6.0.0.bin")
    assert stored.size == len(data) and store.content(stored.id) == data
    assert [len(store.chunk(stored.id, n)) for n in range(4)] == [CHUNK_BYTES] * 3 + [1777]
