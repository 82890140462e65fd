"""Devices whose serials hold what a URL path does not expect (stored before
serials were checked, or sent by a hostile device): every page and REST URL
still works for them, and they can be viewed and deleted."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import reverse

from oktoscripts.devices import identifiers

HOSTILE_SERIALS = [
    "a/b",
    "/leading",
    "trailing/",
    "x//y",
    "line\nbreak",
    "tab\there",
    "<b>bold</b>",
    "100%",
    "%2F",
    "q?x=1#frag",
    "back\\slash",
    " space ",
    "é/ü",
]


def encode_uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent: what the device page's script sends."""
    return quote(text, safe="-_.!~*'()")


@pytest.fixture
def legacy_devices(mongo_uri, monkeypatch):
    """Devices with hostile serials, written as the registry wrote them before
    it checked serials."""
    from oktoscripts.devices.client import default_registry

    registry = default_registry()
    registry.collection.delete_many({})
    with monkeypatch.context() as unchecked:
        unchecked.setattr(identifiers, "check_serial", lambda serial: serial)
        for serial in HOSTILE_SERIALS:
            registry.upsert_cwmp(serial, oui="00AA11", manufacturer="Legacy", events=["1 BOOT"])
    yield registry
    registry.collection.delete_many({})


def test_the_device_list_links_every_device(client_for, legacy_devices):
    page = client_for("viewer").get("/devices/")
    assert page.status_code == 200
    html = page.content.decode()
    for serial in HOSTILE_SERIALS:
        assert f'href="{reverse("device", args=[serial])}"' in html
    assert "<b>bold</b>" not in html  # shown as text


@pytest.mark.parametrize("serial", HOSTILE_SERIALS)
def test_each_device_page_and_record(client_for, legacy_devices, serial):
    viewer = client_for("viewer")
    page = viewer.get(reverse("device", args=[serial]))
    assert page.status_code == 200 and page.context["device"]["sn"] == serial
    # "/" percent-encoded (encodeURIComponent) or sent as it is
    for escaped in (encode_uri_component(serial), quote(serial, safe="/")):
        record = viewer.get(f"/api/devices/{escaped}")
        assert record.status_code == 200, (escaped, record.content)
        assert record.json()["sn"] == serial


@pytest.mark.parametrize("serial", ["a/b", "line\nbreak", "%2F", "trailing/"])
def test_a_device_with_a_hostile_serial_can_be_renamed_and_deleted(
    client_for, legacy_devices, serial
):
    admin = client_for("admin")
    url = f"/api/devices/{encode_uri_component(serial)}"
    renamed = admin.patch(url, {"alias": "odd one"}, content_type="application/json")
    assert renamed.status_code == 200 and renamed.json()["alias"] == "odd one"
    deleted = admin.delete(url)
    assert deleted.status_code == 200 and deleted.json() == {"deleted": True, "serial": serial}
    assert admin.get(url).status_code == 404
    assert legacy_devices.get(serial) is None
    others = {d["serial"] for d in legacy_devices.collection.find({}, {"serial": 1})}
    assert others == set(HOSTILE_SERIALS) - {serial}  # "a/b" did not take "a" or "b"


def test_new_devices_with_such_serials_are_refused(mongo_uri):
    from oktoscripts.devices.client import default_registry

    registry = default_registry()
    for serial in ("a/b", "line\nbreak", "..", " space "):
        with pytest.raises(identifiers.InvalidIdentifier):
            registry.upsert_cwmp(serial, oui="00AA11")
        assert registry.get(serial) is None


def test_admins_bind_a_credential_to_devices(client_for, mongo_uri):
    from oktoscripts.devices.client import default_credentials

    store = default_credentials()
    store.delete("customer-9")
    admin = client_for("admin")
    form = {"username": "customer-9", "password": "pw-9", "devices": "SN-1, SN-2"}
    assert admin.post("/credentials/set", form).status_code == 302
    assert store.binding("customer-9").serials == {"SN-1", "SN-2"}
    # a new password alone keeps the devices; an invalid serial is refused and said
    admin.post("/credentials/set", {"username": "customer-9", "password": "pw-10"})
    assert store.binding("customer-9").serials == {"SN-1", "SN-2"}
    assert store.verify_basic("customer-9", "pw-10")
    refused = admin.post(
        "/credentials/set", {**form, "devices": "a/b"}, follow=True
    ).content.decode()
    assert "contains &#x27;/&#x27;" in refused
    assert store.binding("customer-9").serials == {"SN-1", "SN-2"}
    page = admin.get("/credentials/").content.decode()
    assert "customer-9" in page and "SN-1 SN-2" in page
    store.delete("customer-9")
