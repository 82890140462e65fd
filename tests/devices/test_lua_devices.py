"""The device functions from Lua, end to end through the engine."""

from __future__ import annotations

import asyncio

import nats
import pytest

from oktoscripts.bindings.services import Services
from oktoscripts.devices import refresh
from oktoscripts.devices.credentials import CredentialStore
from oktoscripts.devices.events import LoopAnnouncer
from oktoscripts.devices.registry import DeviceRegistry
from oktoscripts.lua.run import LuaRun
from oktoscripts.runs.principal import Principal


@pytest.fixture
async def nc(nats_url):
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def services(nc, mdb):
    registry = DeviceRegistry(mdb, announcer=LoopAnnouncer(nc, asyncio.get_running_loop()))
    registry.ensure_indexes()
    return Services(nats=nc, mongo=mdb, devices=registry)


def add_cpe(registry: DeviceRegistry, serial: str = "CPE1", **extra) -> None:
    fields = dict(
        oui="00AABB",
        product_class="HG",
        manufacturer="Huawei",
        model="HG8245H",
        software_version="V3",
        data_model="TR-098",
        ip="192.0.2.7",
        periodic_inform_interval=300,
    )
    fields.update(extra)
    registry.upsert_cwmp(serial, **fields)


async def run(source: str, services: Services, **kwargs):
    # As the machine's operator (runscript); the roles are tested in tests/runs/test_principal.py.
    kwargs.setdefault("principal", Principal.operator())
    return await LuaRun(source, name="t", services=services, **kwargs).run()


async def test_get_device(services):
    add_cpe(services.devices)
    outcome = await run(
        """
        local d = get_device("CPE1")
        return {d.sn, d.model, d.vendor, d.version, d.product_class, d.alias, d.status,
                d.cwmp, d.usp, d.data_model, d.oui, d.ip, type(d.last_seen),
                type(d.mtps), type(d.params), math.type and 0 or 1}
        """,
        services,
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [
        "CPE1",
        "HG8245H",
        "Huawei",
        "V3",
        "HG",
        "",
        2,
        True,
        False,
        "TR-098",
        "00AABB",
        "192.0.2.7",
        "string",
        "table",
        "table",
        1,
    ]


async def test_get_device_status_is_an_integer_and_last_seen_iso(services):
    add_cpe(services.devices)
    outcome = await run(
        'local d = get_device("CPE1") return {d.status == 2, d.status % 1 == 0, '
        'd.last_seen:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$") ~= nil}',
        services,
    )
    assert outcome.result == [True, True, True]


async def test_get_device_unknown_is_false(services):
    outcome = await run('return get_device("NOPE") == false', services)
    assert outcome.result is True


@pytest.mark.parametrize(
    "call,message",
    [
        ('get_device("")', 'get_device: argument #1 (serial) must be a non-empty string, got ""'),
        ("get_device(42)", "get_device: argument #1 (serial) must be a string, got 42"),
        ("get_device()", "get_device: argument #1 (serial) must be a string, got nil"),
        ("delete_device({})", "delete_device: argument #1 (serial) must be a string, got a table"),
        (
            "refresh_device_parameters(nil)",
            "refresh_device_parameters: argument #1 (serial) must be a string, got nil",
        ),
        (
            'create_or_update_device_credential("u", 5)',
            "create_or_update_device_credential: argument #2 (password) must be a string, got 5",
        ),
        (
            "listen_to_new_device()",
            "listen_to_new_device: argument #1 (callback) must be a function, got nil",
        ),
        (
            'listen_to_new_device("*", "*", "x")',
            'listen_to_new_device: argument #1 (callback) must be a function, got "x"',
        ),
    ],
)
async def test_bad_arguments_raise_a_lua_error_at_the_line(services, call, message):
    outcome = await run(f"local x = 1\n{call}\n", services)
    assert outcome.status == "failed"
    assert message in outcome.error.message
    assert outcome.error.line == 2


async def test_bad_argument_can_be_caught_with_pcall(services):
    outcome = await run('local ok, err = pcall(get_device, "") return {ok, err}', services)
    assert outcome.result[0] is False
    assert "must be a non-empty string" in outcome.result[1]


async def test_get_all_devices(services):
    outcome = await run("return #get_all_devices()", services)
    assert outcome.result == 0
    for serial in ("B", "A", "C"):
        add_cpe(services.devices, serial)
    outcome = await run(
        "local all = get_all_devices() local out = {} "
        "for i, d in ipairs(all) do out[i] = d.sn .. ':' .. d.status end return out",
        services,
    )
    assert outcome.result == ["A:2", "B:2", "C:2"]


async def test_delete_device(services):
    add_cpe(services.devices)
    outcome = await run(
        'return {delete_device("CPE1"), delete_device("CPE1"), get_device("CPE1")}', services
    )
    assert outcome.result == [True, False, False]


async def test_create_or_update_device_credential(services, mdb):
    outcome = await run(
        """return {
            create_or_update_device_credential("cpe-1", "pw-1"),
            create_or_update_device_credential("cpe-1", "pw-2"),
            create_or_update_device_credential("", "pw"),
            create_or_update_device_credential("user", ""),
            create_or_update_device_credential("a.b", "pw"),
            create_or_update_device_credential("user", "p.w"),
        }""",
        services,
    )
    assert outcome.result == [True, True, False, False, False, False]
    store = CredentialStore(mdb)
    assert store.usernames() == ["cpe-1"]
    assert store.verify_basic("cpe-1", "pw-2")
    assert "pw-2" not in repr(list(mdb.device_credentials.find({})))


async def test_refresh_without_a_protocol_reader_is_false(services):
    add_cpe(services.devices)
    saved = refresh._readers.pop("cwmp", None)
    try:
        outcome = await run(
            'return {refresh_device_parameters("CPE1"), refresh_device_parameters("NOPE")}',
            services,
        )
    finally:
        if saved:
            refresh.register("cwmp", saved)
    assert outcome.result == [False, False]


async def test_refresh_dispatches_to_the_protocol_and_stores_params(services):
    add_cpe(services.devices)
    add_cpe(services.devices, "DOWN")
    seen = []

    async def read_cwmp(ctx, device):
        seen.append(device["serial"])
        if device["serial"] == "DOWN":
            return None  # the device could not be read
        return {
            "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1"
            ".ExternalIPAddress": "198.51.100.4"
        }

    saved = refresh._readers.get("cwmp")
    refresh.register("cwmp", read_cwmp)
    try:
        outcome = await run(
            """
            local ok = refresh_device_parameters("CPE1")
            local down = refresh_device_parameters("DOWN")
            local d = get_device("CPE1")
            return {ok, down, d.params["InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1"
                .. ".WANIPConnection.1.ExternalIPAddress"]}
            """,
            services,
        )
    finally:
        if saved:
            refresh.register("cwmp", saved)
        else:
            refresh.unregister("cwmp")
    assert outcome.result == [True, False, "198.51.100.4"]
    assert seen == ["CPE1", "DOWN"]
    calls = outcome.metrics["device_calls"]
    assert [(c["name"], c["target"], c["ok"]) for c in calls] == [
        ("refresh_device_parameters", "CPE1", True),
        ("refresh_device_parameters", "DOWN", False),
    ]


@pytest.mark.parametrize(
    "register", ["listen_to_new_device(on_new)", 'listen_to_new_device("*", "*", on_new)']
)
async def test_listen_to_new_device(services, register):
    from oktoscripts.devices.events import new_device_events

    # OLD's own event is published before the listener starts (it is announced
    # on the loop, after the insert returned).
    announced = await new_device_events(services.nats)
    add_cpe(services.devices, "OLD")
    assert (await asyncio.wait_for(anext(announced), 10))["sn"] == "OLD"
    await announced.aclose()
    lines: list[str] = []
    statuses: list[str] = []
    got_two = asyncio.Event()

    def on_output(line):
        if line.stream == "stdout":
            lines.append(line.text)
            if len(lines) >= 2:
                got_two.set()

    source = f"""
    local function on_new(d)
        print(d.sn .. " " .. tostring(d.cwmp) .. " " .. tostring(d.usp) .. " " .. d.status)
    end
    {register}
    print("registered")
    """
    lua_run = LuaRun(
        source, name="t", services=services, on_output=on_output, on_status=statuses.append
    )
    task = asyncio.create_task(lua_run.run())
    for _ in range(1000):
        if "listening" in statuses:
            break
        await asyncio.sleep(0.02)
    assert "listening" in statuses
    registry = services.devices
    await asyncio.to_thread(add_cpe, registry, "OLD")  # known: no event
    await asyncio.to_thread(add_cpe, registry, "NEW1")
    await asyncio.to_thread(registry.upsert_usp, "os::NEW2", mtp="mqtt")
    await asyncio.wait_for(got_two.wait(), 30)
    await asyncio.sleep(0.3)  # nothing else arrives
    lua_run.cancel()
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.status == "cancelled"
    assert lines == ["registered", "NEW1 true false 2", "os::NEW2 false true 2"]


async def test_listen_without_message_bus_is_an_error(mdb):
    services = Services(nats=None, mongo=mdb, devices=DeviceRegistry(mdb))
    outcome = await run("listen_to_new_device(function() end)", services)
    assert outcome.status == "failed"
    assert "listen_to_new_device: this run has no connection to the message bus" in (
        outcome.error.message
    )


async def test_a_host_with_only_a_database_gets_a_registry_on_it(mdb, registry):
    add_cpe(registry, "ON-DB")
    outcome = await run('return get_device("ON-DB").sn', Services(mongo=mdb))
    assert outcome.result == "ON-DB"


async def test_database_down_gives_the_failure_values_not_an_error():
    import pymongo

    from oktoscripts.launcher.embedded.ports import free_port

    # A real client to a port where nothing listens.
    client = pymongo.MongoClient(
        f"mongodb://127.0.0.1:{free_port()}/?directConnection=true", serverSelectionTimeoutMS=200
    )
    try:
        down = client["nothing"]
        lines = []
        outcome = await LuaRun(
            """return {get_device("X"), #get_all_devices(), delete_device("X"),
                       create_or_update_device_credential("u", "p"),
                       refresh_device_parameters("X")}""",
            name="t",
            services=Services(mongo=down, devices=DeviceRegistry(down)),
            on_output=lines.append,
            principal=Principal.operator(),
        ).run()
    finally:
        client.close()
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [False, 0, False, False, False]
    logged = [line.text for line in lines if line.stream == "log"]
    assert any(text.startswith("get_device: database error") for text in logged)
