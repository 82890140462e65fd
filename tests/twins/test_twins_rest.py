"""The REST API of device twins: roles, states, errors, audit."""

from __future__ import annotations

import pytest

from oktoscripts.scripts.models import AuditEvent
from tests.ide import conftest as _ide

fast_passwords, users, client_for = _ide.fast_passwords, _ide.users, _ide.client_for


@pytest.fixture
def device(mongo_uri):
    from oktoscripts.devices.client import default_registry, mongo_database

    registry = default_registry()
    registry.upsert_cwmp(
        "REST-0001",
        oui="00AA11",
        product_class="Router",
        manufacturer="Acme",
        model="R1",
        software_version="1.0",
        periodic_inform_interval=300,
    )
    yield registry
    db = mongo_database()
    for serial in ("REST-0001", "REST-0001~twin", "my-lab-twin"):
        registry.delete(serial)
        db["twins"].delete_one({"_id": serial})


def test_operator_makes_resets_and_deletes_a_twin(client_for, device):
    viewer, operator = client_for("viewer"), client_for("operator")
    refused = viewer.post("/api/twins", {"source": "REST-0001"}, content_type="application/json")
    assert refused.status_code == 403
    made = operator.post("/api/twins", {"source": "REST-0001"}, content_type="application/json")
    assert made.status_code == 202, made.content
    twin = made.json()
    assert twin["serial"] == "REST-0001~twin" and twin["state"] == "requested"
    assert twin["source"] == "REST-0001" and twin["requested_by"] == "operator"

    shown = viewer.get("/api/devices/REST-0001~twin").json()
    assert shown["twin"] is True and shown["twin_of"] == "REST-0001"
    assert shown["vendor"] == "Acme"
    listed = viewer.get("/api/devices?twins=only").json()["results"]
    assert [d["sn"] for d in listed] == ["REST-0001~twin"]
    assert "REST-0001~twin" not in [
        d["sn"] for d in viewer.get("/api/devices?twins=exclude").json()["results"]
    ]
    assert viewer.get("/api/twins").json()["results"][0]["serial"] == "REST-0001~twin"

    again = operator.post("/api/twins", {"source": "REST-0001"}, content_type="application/json")
    assert again.status_code == 409 and "already exists" in again.json()["error"]
    of_twin = operator.post(
        "/api/twins", {"source": "REST-0001~twin"}, content_type="application/json"
    )
    assert of_twin.status_code == 409 and "itself a twin" in of_twin.json()["error"]
    assert (
        operator.post("/api/twins", {"source": "NOPE"}, content_type="application/json").status_code
        == 404
    )
    bad_name = operator.post(
        "/api/twins", {"source": "REST-0001", "name": "a/b"}, content_type="application/json"
    )
    assert bad_name.status_code == 409 and "cannot name a twin" in bad_name.json()["error"]
    unknown_field = operator.post(
        "/api/twins", {"source": "REST-0001", "nam": "x"}, content_type="application/json"
    )
    assert unknown_field.status_code == 400

    reset_body = {"serial": "REST-0001~twin"}
    assert (
        viewer.post("/api/twin-resets", reset_body, content_type="application/json").status_code
        == 403
    )
    reset = operator.post("/api/twin-resets", reset_body, content_type="application/json")
    assert reset.status_code == 200
    assert operator.delete("/api/twins/REST-0001~twin").status_code == 200
    assert viewer.get("/api/devices/REST-0001~twin").status_code == 404
    assert operator.delete("/api/twins/REST-0001~twin").status_code == 404
    actions = list(
        AuditEvent.objects.filter(target="REST-0001~twin")
        .values_list("action", flat=True)
        .order_by("id")
    )
    assert actions == ["twin.create", "twin.reset", "twin.delete"]


def author_user():
    from django.contrib.auth.models import User

    return User.objects.get(username="author")


def test_a_chosen_name_and_the_device_page(client_for, device):
    operator = client_for("operator")
    made = operator.post(
        "/api/twins",
        {"source": "REST-0001", "name": "my-lab-twin"},
        content_type="application/json",
    )
    assert made.json()["serial"] == "my-lab-twin"
    page = operator.get("/devices/my-lab-twin/").content.decode()
    assert "A simulated twin of" in page and 'id="twin-reset"' in page
    original = operator.get("/devices/REST-0001/").content.decode()
    assert 'id="twin-device"' in original and "my-lab-twin" in original
    as_viewer = client_for("viewer").get("/devices/REST-0001/").content.decode()
    assert 'id="twin-device"' not in as_viewer
    from oktoscripts.scripts import editing

    script = editing.create_script(author_user(), "targeted", "return args.serial")
    assert 'id="twin-target"' in operator.get(f"/scripts/{script.pk}/").content.decode()
    listing = operator.get("/devices/").content.decode()
    assert '<span class="tag twin">twin</span>' in listing
    # Deleting the twin's device deletes the twin (it would come back unmarked otherwise).
    assert client_for("admin").delete("/api/devices/my-lab-twin").status_code == 200
    assert operator.get("/api/twins/my-lab-twin").status_code == 404
