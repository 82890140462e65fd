"""The REST endpoints of devices: reads for every signed-in role, delete and
alias behind their permissions, JSON errors."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def device_db(settings, mdb, registry):
    """The endpoints' default registry points at this test's database."""
    settings.MONGO_DB_NAME = mdb.name
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    registry.upsert_cwmp(
        "CPE-1",
        manufacturer="Huawei",
        product_class="HG",
        connection_request_url="http://192.0.2.1/cr",
        connection_request_username="u",
        connection_request_password="topsecret",
    )
    registry.upsert_cwmp("CPE-2", manufacturer="ZTE", product_class="F660")
    registry.upsert_usp("os::agent-1", vendor="Acme", mtp="mqtt")
    return registry


def client_as(username: str, *, role: str | None = "Viewer", perms: tuple[str, ...] = ()):
    user = User.objects.create_user(username=username, password="pw-for-tests")
    if role:
        user.groups.add(Group.objects.get(name=role))
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app, codename=codename)
        )
    client = Client()
    client.force_login(user)
    return client


def test_reads_need_a_signed_in_user():
    anonymous = Client()
    assert anonymous.get("/api/devices").status_code == 401
    assert anonymous.get("/api/devices/CPE-1").status_code == 401
    no_role = client_as("norole", role=None)
    assert no_role.get("/api/devices").status_code == 403


def test_list_with_filters_and_paging():
    viewer = client_as("viewer")
    body = viewer.get("/api/devices").json()
    assert body["count"] == 3
    assert [d["sn"] for d in body["results"]] == ["CPE-1", "CPE-2", "os::agent-1"]
    body = viewer.get("/api/devices?protocol=usp").json()
    assert [d["sn"] for d in body["results"]] == ["os::agent-1"]
    body = viewer.get("/api/devices?vendor=ZTE&status=2").json()
    assert [d["sn"] for d in body["results"]] == ["CPE-2"]
    body = viewer.get("/api/devices?q=cpe&page=2&page_size=1").json()
    assert body["count"] == 2 and [d["sn"] for d in body["results"]] == ["CPE-2"]
    for bad in ("status=5", "protocol=snmp", "page=0", "page_size=x", "sort=password"):
        response = viewer.get(f"/api/devices?{bad}")
        assert response.status_code == 400, bad
        assert "error" in response.json()


def test_one_device_never_shows_a_password():
    viewer = client_as("viewer")
    response = viewer.get("/api/devices/CPE-1")
    assert response.status_code == 200
    device = response.json()
    assert device["sn"] == "CPE-1" and device["status_name"] == "online"
    assert device["cwmp_details"]["connection_request_url"] == "http://192.0.2.1/cr"
    assert "topsecret" not in response.content.decode()
    assert "password" not in response.content.decode()
    assert (
        viewer.get("/api/devices/os::agent-1").json()["usp_details"]["mtps"]["mqtt"]["state"]
        == "connected"
    )
    assert viewer.get("/api/devices/NOPE").status_code == 404


def test_counts():
    body = client_as("viewer").get("/api/device-counts").json()
    assert body["status"] == {"0": 0, "1": 0, "2": 3}
    assert body["vendor"] == {"Huawei": 1, "ZTE": 1, "Acme": 1}


def test_delete_needs_its_permission(device_db):
    for role in ("Viewer", "Operator"):
        response = client_as(role.lower(), role=role).delete("/api/devices/CPE-2")
        assert response.status_code == 403
        assert "devices.delete_device" in response.json()["error"]
    assert client_as("admin", role="Admin").delete("/api/devices/CPE-1").status_code == 200
    allowed = client_as("deleter", perms=("devices.delete_device",))
    assert allowed.delete("/api/devices/CPE-2").json() == {"deleted": True, "serial": "CPE-2"}
    assert device_db.get("CPE-2") is None
    assert allowed.delete("/api/devices/CPE-2").status_code == 404
    from oktoscripts.scripts.models import AuditEvent

    assert AuditEvent.objects.filter(action="device.delete", target="CPE-2").count() == 1


def test_alias_needs_its_permission(device_db):
    viewer = client_as("viewer")
    assert (
        viewer.patch(
            "/api/devices/CPE-1", {"alias": "x"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert (
        client_as("operator", role="Operator")
        .patch("/api/devices/CPE-2", {"alias": "y"}, content_type="application/json")
        .status_code
        == 200
    )
    editor = client_as("editor", perms=("devices.change_device_alias",))
    response = editor.patch(
        "/api/devices/CPE-1", {"alias": " Shop "}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["alias"] == "Shop"
    assert device_db.get_lua("CPE-1")["alias"] == "Shop"
    for bad in ({"alias": 5}, {"vendor": "x"}, {}):
        assert (
            editor.patch("/api/devices/CPE-1", bad, content_type="application/json").status_code
            == 400
        )
    assert (
        editor.patch(
            "/api/devices/NOPE", {"alias": "x"}, content_type="application/json"
        ).status_code
        == 404
    )


def test_superuser_holds_both_permissions(device_db):
    root = User.objects.create_superuser("root", "", "pw")
    client = Client()
    client.force_login(root)
    assert (
        client.patch(
            "/api/devices/CPE-1", {"alias": "r"}, content_type="application/json"
        ).status_code
        == 200
    )
    assert client.delete("/api/devices/CPE-1").status_code == 200


def test_routes_are_in_the_openapi_schema():
    schema = client_as("viewer").get("/api/openapi.json").json()
    assert "/api/devices" in schema["paths"]
    assert {"get", "patch", "delete"} <= set(schema["paths"]["/api/devices/{serial}"])
