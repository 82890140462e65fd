"""Device credentials: never in clear, Basic by scrypt, Digest by HA1 per realm."""

from __future__ import annotations

import base64
import hashlib

import pytest

from oktoscripts.devices.credentials import CredentialError, CredentialStore, DeviceBinding, ha1

PASSWORD = "S3cret-pw_for-cpe"


def every_string(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from every_string(item)
    elif isinstance(value, list):
        for item in value:
            yield from every_string(item)
    elif isinstance(value, str | bytes):
        yield value if isinstance(value, str) else value.decode("latin-1")


def test_password_is_never_readable_from_the_database(credentials, mdb):
    credentials.create_or_update("cpe-user", PASSWORD)
    raw_docs = list(mdb.device_credentials.find({}))
    assert len(raw_docs) == 1
    forms = {
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        PASSWORD.encode().hex(),
        hashlib.sha256(PASSWORD.encode()).hexdigest(),
        hashlib.md5(PASSWORD.encode()).hexdigest(),
    }
    for text in every_string(raw_docs):
        for form in forms:
            assert form not in text
    # What is stored: a salted slow hash and the realm-bound HA1.
    doc = raw_docs[0]
    assert doc["basic"]["alg"] == "scrypt" and len(base64.b64decode(doc["basic"]["salt"])) == 16
    assert doc["digest"] == [
        {"realm": "oktoscripts", "ha1": ha1("cpe-user", "oktoscripts", PASSWORD)}
    ]


def test_same_password_gets_a_different_salt(credentials, mdb):
    credentials.create_or_update("u1", PASSWORD)
    credentials.create_or_update("u2", PASSWORD)
    hashes = {d["basic"]["hash"] for d in mdb.device_credentials.find({})}
    assert len(hashes) == 2


def test_basic_verification(credentials):
    assert credentials.create_or_update("cpe", PASSWORD) is True
    assert credentials.verify_basic("cpe", PASSWORD) is True
    assert credentials.verify_basic("cpe", PASSWORD) is True  # remembered
    assert credentials.verify_basic("cpe", PASSWORD + "x") is False
    assert credentials.verify_basic("nobody", PASSWORD) is False
    assert credentials.verify_basic("cpe", None) is False


def test_update_replaces_the_password(credentials):
    credentials.create_or_update("cpe", PASSWORD)
    assert credentials.verify_basic("cpe", PASSWORD)
    assert credentials.create_or_update("cpe", "new-password") is False  # not new
    assert credentials.verify_basic("cpe", PASSWORD) is False  # the remembered check is gone
    assert credentials.verify_basic("cpe", "new-password") is True
    assert credentials.digest_ha1("cpe") == ha1("cpe", "oktoscripts", "new-password")


def test_realm_rotation(credentials, settings):
    credentials.create_or_update("cpe", PASSWORD)
    settings.DIGEST_REALM = "acs.example.net"
    assert credentials.digest_ha1("cpe") is None  # must be set again for the new realm
    assert credentials.digest_ha1("cpe", "oktoscripts") is not None  # old one kept until then
    assert credentials.verify_basic("cpe", PASSWORD) is True  # Basic does not depend on it
    credentials.create_or_update("cpe", PASSWORD)
    assert credentials.digest_ha1("cpe") == ha1("cpe", "acs.example.net", PASSWORD)
    assert credentials.digest_ha1("cpe", "oktoscripts") is None


@pytest.mark.parametrize(
    "username,password",
    [("", "pw"), ("user", ""), ("us.er", "pw"), ("user", "p.w"), (None, "pw"), ("user", 42)],
)
def test_refused_credentials(credentials, username, password):
    with pytest.raises(CredentialError):
        credentials.create_or_update(username, password)
    assert credentials.usernames() == []


def test_username_is_unique(credentials, mdb):
    credentials.create_or_update("cpe", "a")
    credentials.create_or_update("cpe", "b")
    assert mdb.device_credentials.count_documents({"username": "cpe"}) == 1
    index = {i["name"]: i for i in mdb.device_credentials.list_indexes()}["username_unique"]
    assert index["unique"] is True


def test_delete(credentials):
    credentials.create_or_update("cpe", PASSWORD)
    assert credentials.delete("cpe") is True
    assert credentials.verify_basic("cpe", PASSWORD) is False
    assert not credentials.exists("cpe")


def test_store_on_a_fresh_client_verifies(credentials, mdb):
    credentials.create_or_update("cpe", PASSWORD)
    other = CredentialStore(mdb)
    assert other.verify_basic("cpe", PASSWORD)


def test_a_credential_speaks_for_the_device_its_username_names(credentials):
    credentials.create_or_update("SN-0001", PASSWORD)
    binding = credentials.binding("SN-0001")
    assert binding.permits("SN-0001") and not binding.permits("SN-0002")
    assert binding.permits_cwmp("00A0B1", "IGD", "SN-0001")
    assert not binding.permits_cwmp("00A0B1", "IGD", "SN-0002")
    assert credentials.binding("nobody") is None


def test_tr069_usernames_name_the_whole_device_id():
    by_serial = DeviceBinding("00A0B1-SN%2D1")  # OUI-SerialNumber
    assert by_serial.permits_cwmp("00A0B1", "IGD", "SN-1")
    assert by_serial.permits_cwmp("00A0B1", "Other", "SN-1")
    assert not by_serial.permits_cwmp("00A0B2", "IGD", "SN-1")  # another vendor's SN-1
    assert not by_serial.permits_cwmp("00A0B1", "IGD", "00A0B1-SN%2D1")  # not a plain serial
    by_class = DeviceBinding("00A0B1-IGD-SN%2d1")  # OUI-ProductClass-SerialNumber
    assert by_class.permits_cwmp("00A0B1", "IGD", "SN-1")
    assert not by_class.permits_cwmp("00A0B1", "STB", "SN-1")


def test_a_credential_bound_to_listed_devices(credentials, mdb):
    assert credentials.create_or_update("customer-17", PASSWORD, devices=["SN-A", "SN-B"])
    binding = credentials.binding("customer-17")
    assert binding.permits_cwmp("00A0B1", "IGD", "SN-A") and binding.permits("SN-B")
    assert not binding.permits_cwmp("00A0B1", "IGD", "customer-17-other")
    # a new password keeps the binding; devices=[] removes it
    credentials.create_or_update("customer-17", "new-password")
    assert credentials.binding("customer-17").serials == {"SN-A", "SN-B"}
    credentials.create_or_update("customer-17", "new-password", devices=[])
    assert not credentials.binding("customer-17").permits("SN-A")
    with pytest.raises(CredentialError, match="contains '/'"):
        credentials.create_or_update("customer-18", PASSWORD, devices=["a/b"])
    with pytest.raises(CredentialError, match="list of device serials"):
        credentials.create_or_update("customer-18", PASSWORD, devices="SN-A")
    assert mdb.device_credentials.count_documents({"username": "customer-18"}) == 0


def test_many_credentials_in_one_write(credentials):
    pairs = [(f"00A0B1-MANY{i}", f"pw{i}") for i in range(5)]
    assert credentials.create_or_update_many(pairs) == 5
    assert credentials.create_or_update_many(pairs[:2]) == 0  # replaced, not new
    assert credentials.existing(["00A0B1-MANY1", "nobody"]) == {"00A0B1-MANY1"}
    assert credentials.verify_basic("00A0B1-MANY3", "pw3")
    with pytest.raises(CredentialError):
        credentials.create_or_update_many([("ok", "pw"), ("bad.name", "pw")])
