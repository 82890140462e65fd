"""What a CWMP twin keeps of its original beyond names and values: the CWMP
version it speaks, and the shape of a table's instances: AddObject on the twin
makes an instance with the children the original's instances have (all of
them, at default values: not a copy of one instance), and on a table that had
no instance the children the standard data model defines."""

from __future__ import annotations

import asyncio

from oktoscripts.cwmp import client
from oktoscripts.cwmp.soap import RpcRequest
from oktoscripts.sim import twin_models
from oktoscripts.twins import demos

from .conftest import until
from .test_cwmp_twin import _twin_of


async def test_a_twin_speaks_the_cwmp_version_of_its_original(
    fleet_factory, host_factory, mongo_db, url
):
    fleet = await fleet_factory(1, data_model="TR-098", cwmp_minor=0)
    await until(lambda: fleet.stats.sessions_ok >= 1)
    original = fleet.cpes[0]
    spoken = mongo_db.devices.find_one({"_id": original.serial})["cwmp"]["cwmp_ns"]
    assert spoken == "urn:dslforum-org:cwmp-1-0"
    serial = await _twin_of(mongo_db, host_factory(acs_url=url), original.serial)
    assert (
        mongo_db.twin_snapshots.find_one({"serial": original.serial})["data"]["cwmp_ns"] == spoken
    )
    await until(lambda: mongo_db.devices.find_one({"_id": serial})["cwmp"].get("cwmp_ns") == spoken)


def _snapshot_with_two_different_hosts() -> dict:
    """A TR-181 device whose two Host instances report different parameters."""
    host = "Device.Hosts.Host."
    return {
        "protocol": "cwmp",
        "root": "Device.",
        "objects": [
            {"n": "Device.", "w": False},
            {"n": "Device.Hosts.", "w": False},
            {"n": host, "w": True},
            {"n": host + "1.", "w": True},
            {"n": host + "2.", "w": True},
            {"n": host + "2.IPv4Address.", "w": True},
            {"n": host + "2.IPv4Address.1.", "w": True},
        ],
        "params": [
            {"n": host + "1.HostName", "v": "laptop", "t": "string", "w": True},
            {"n": host + "1.Active", "v": "1", "t": "boolean", "w": False},
            {"n": host + "2.HostName", "v": "phone", "t": "string", "w": True},
            {"n": host + "2.LeaseTimeRemaining", "v": "3600", "t": "int", "w": False},
            {
                "n": host + "2.IPv4Address.1.IPAddress",
                "v": "192.168.1.7",
                "t": "string",
                "w": False,
            },
        ],
    }


def test_add_object_shapes_the_instance_from_every_instance_at_defaults():
    model = twin_models.cwmp_model(_snapshot_with_two_different_hosts())
    number = model.add_object("Device.Hosts.Host.")
    assert number == 3
    new = "Device.Hosts.Host.3."
    values = {
        n[len(new) :]: (p.value, p.type, p.writable)
        for n, p in model.params.items()
        if n.startswith(new)
    }
    assert values == {
        "HostName": ("", "string", True),
        "Active": ("0", "boolean", False),
        "LeaseTimeRemaining": ("0", "int", False),
    }
    # Its nested table is there, empty, and AddObject gives it its own children.
    names = dict(model.get_names(new, False))
    assert names == {
        new: True,
        new + "IPv4Address.": True,
        new + "HostName": True,
        new + "Active": False,
        new + "LeaseTimeRemaining": False,
    }
    assert model.add_object(new + "IPv4Address.") == 1
    assert model.get_values([new + "IPv4Address.1."]) == [
        (new + "IPv4Address.1.IPAddress", "", "string")
    ]
    model.delete_object(new)
    assert not any(n.startswith(new) for n in model.objects() | set(model.params))
    assert model.add_object("Device.Hosts.Host.") == 4


def _first_boolean(wanted: dict[str, str]) -> str:
    return next(name for name, xsd in wanted.items() if xsd == "boolean")


async def test_add_object_on_an_empty_table_gives_the_standard_children(demo_host, mongo_db, nc):
    tr181 = demos.shipped()["gateway-tr181"]["serial"]
    tr098 = demos.shipped()["gateway-tr098"]["serial"]

    async def call(serial, request):
        answer = await client.call(nc, serial, request, timeout_s=15)
        assert answer["ok"], answer
        return answer

    for serial, table, wanted in (
        (
            tr181,
            "Device.NAT.PortMapping.",
            {"Enable": "boolean", "ExternalPort": "unsignedInt", "InternalClient": "string"},
        ),
        (
            tr181,
            "Device.DHCPv4.Server.Pool.1.StaticAddress.",
            {"Chaddr": "string", "Yiaddr": "string", "Enable": "boolean"},
        ),
        (
            tr098,
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1."
            "PortMapping.",
            {"PortMappingEnabled": "boolean", "ExternalPort": "unsignedInt"},
        ),
    ):
        before = await call(serial, RpcRequest("GetParameterNames", path=table, next_level=True))
        assert before["result"] == []  # empty: nothing to copy from
        added = await call(serial, RpcRequest("AddObject", object_name=table))
        assert added["result"]["instance_number"] == 1
        instance = f"{table}1."
        names = await call(serial, RpcRequest("GetParameterNames", path=instance, details=True))
        values = await call(
            serial,
            RpcRequest(
                "GetParameterValues",
                names=[n for n in names["result"] if not n.endswith(".")],
                details=True,
            ),
        )
        for name, xsd in wanted.items():
            assert values["types"][instance + name] == xsd, name
            assert names["writable"][instance + name] is True, name
        set_ok = await call(
            serial,
            RpcRequest(
                "SetParameterValues", values=[(instance + _first_boolean(wanted), "1", "boolean")]
            ),
        )
        assert set_ok["result"] is True
    await asyncio.sleep(0)
