"""Roles hold inside Lua: a run acts for its user (an automation's runs for the
user who configured it), and the bindings that change the device registry or
its secrets ask that user for the permission REST asks for the same change.

Runs go the real way: the REST API stores them, a worker claims them from the
database and runs them with the real bindings on MongoDB.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pymongo
import pytest
from asgiref.sync import sync_to_async

from tests.runs.conftest import wait_for_status

DELETE = 'return delete_device("CPE1")'
MINT = 'return create_or_update_device_credential("evilcpe", "s3cret-pass")'
TRY_BOTH = """
local deleted, why = pcall(delete_device, "CPE1")
local minted, why2 = pcall(create_or_update_device_credential, "evilcpe", "s3cret-pass")
return {deleted = deleted, why = why, minted = minted, why2 = why2}
"""


@pytest.fixture
def mdb(mongo_uri):
    from django.conf import settings

    client = pymongo.MongoClient(mongo_uri, tz_aware=True)
    name = f"{settings.MONGO_DB_NAME}_{uuid.uuid4().hex[:8]}"
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture
def people(transactional_db) -> dict:
    from django.apps import apps
    from django.contrib.auth.models import Group, User

    from oktoscripts.roles import sync_groups

    sync_groups(apps)  # a transactional test flushes the groups the migration made
    users = {}
    for role in ("Viewer", "Author", "Operator", "Admin"):
        users[role] = User.objects.create_user(role.lower() + "1")
        users[role].groups.add(Group.objects.get(name=role))
    return users


@pytest.fixture
async def platform(nc, mdb, start_worker):
    """A worker whose runs reach this test's MongoDB database; the registry holds CPE1."""
    from oktoscripts.bindings.services import Services
    from oktoscripts.devices.credentials import CredentialStore
    from oktoscripts.devices.registry import DeviceRegistry

    registry = DeviceRegistry(mdb)
    registry.ensure_indexes()
    registry.upsert_cwmp(
        "CPE1",
        oui="00AABB",
        product_class="HG",
        manufacturer="Acme",
        model="M1",
        software_version="1",
        data_model="TR-181",
    )
    await start_worker(services=Services(nats=nc, mongo=mdb, devices=registry))
    return registry, CredentialStore(mdb)


async def _script(user, name: str, source: str):  # noqa: ANN001, ANN202
    from oktoscripts.scripts.editing import create_script

    return await sync_to_async(create_script)(user, name, source)


async def _run_over_rest(user, script, **body):  # noqa: ANN001, ANN202
    """POST /api/runs as ``user`` (browser session); the finished Run."""
    from django.test import Client

    client = Client()
    await sync_to_async(client.force_login)(user)
    response = await sync_to_async(client.post)(
        "/api/runs", json.dumps({"script_id": script.pk, **body}), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return await wait_for_status(response.json()["id"], ("succeeded", "failed"))


async def test_an_operators_run_may_neither_delete_devices_nor_mint_credentials(
    people, platform, caplog
):
    registry, credentials = platform
    delete = await _script(people["Admin"], "delete.lua", DELETE)
    mint = await _script(people["Admin"], "mint.lua", MINT)

    run = await _run_over_rest(people["Operator"], delete)
    assert run.status == "failed"
    assert run.error["message"] == (
        "delete_device: refused: user 'operator1' (role Operator) does not hold "
        "the permission 'devices.delete_device'; the run acts for this user"
    )
    assert await sync_to_async(registry.get)("CPE1") is not None
    assert (
        f"run {run.id} (delete.lua): delete_device refused: user 'operator1'" in caplog.text
    )  # and the platform's log says who tried

    run = await _run_over_rest(people["Operator"], mint)
    assert run.status == "failed"
    assert (
        "create_or_update_device_credential: refused: user 'operator1' (role Operator) "
        "does not hold the permission 'scripts.administer'"
    ) in run.error["message"]
    assert await sync_to_async(credentials.usernames)() == []

    # A script may catch the refusal like any Lua error, and read why.
    both = await _script(people["Admin"], "both.lua", TRY_BOTH)
    run = await _run_over_rest(people["Operator"], both)
    assert run.status == "succeeded"
    assert run.result["deleted"] is False and run.result["minted"] is False
    assert "refused" in run.result["why"] and "refused" in run.result["why2"]

    # The same scripts in an Admin's run do both: the roles of REST, inside Lua.
    run = await _run_over_rest(people["Admin"], mint)
    assert (run.status, run.result) == ("succeeded", True)
    assert await sync_to_async(credentials.usernames)() == ["evilcpe"]
    run = await _run_over_rest(people["Admin"], delete)
    assert (run.status, run.result) == ("succeeded", True)
    assert await sync_to_async(registry.get)("CPE1") is None


async def test_the_principal_is_read_from_the_run_record_not_from_the_request(people, platform, nc):
    """A forged request on the run queue (extra fields naming another user, or the
    command line) changes nothing: the worker reads who the run acts for from the
    Run row the platform stored after authenticating the user."""
    from oktoscripts.bus import subjects
    from oktoscripts.runs.submit import _new_run

    registry, _ = platform
    delete = await _script(people["Admin"], "delete.lua", DELETE)
    run = _new_run(
        DELETE,
        "delete.lua",
        {},
        "lua51",
        None,
        "user",
        people["Operator"],
        delete.latest_id,
        "",
        None,
    )
    await sync_to_async(run.save)(force_insert=True)
    forged = {
        "run_id": str(run.id),
        "script_name": "delete.lua",
        "user": people["Admin"].pk,
        "user_id": people["Admin"].pk,
        "started_by": "cli",
        "principal": "operator",
    }
    await nc.jetstream().publish(subjects.run_queue(), json.dumps(forged).encode())
    run = await wait_for_status(run.id, ("succeeded", "failed"))
    assert run.status == "failed" and "user 'operator1'" in run.error["message"]
    assert await sync_to_async(registry.get)("CPE1") is not None


async def test_a_command_line_run_acts_for_the_machines_operator_a_userless_run_for_no_one(
    platform, nc
):
    from oktoscripts.runs.submit import asubmit_run

    registry, _ = platform
    nobody = await asubmit_run(DELETE, script_name="d", started_by="api", nc=nc)
    nobody = await wait_for_status(nobody.id, ("succeeded", "failed"))
    assert nobody.status == "failed"
    assert "delete_device: refused: this run acts for no user" in nobody.error["message"]
    assert await sync_to_async(registry.get)("CPE1") is not None

    cli = await asubmit_run(DELETE, script_name="d", started_by="cli", nc=nc)
    cli = await wait_for_status(cli.id, ("succeeded", "failed"))
    assert (cli.status, cli.result) == ("succeeded", True)


async def test_a_user_who_may_no_longer_run_scripts_runs_nothing(people, platform, nc):
    """Runs stored for a user who then lost the Operator role (or was deactivated)
    are refused when a worker takes them (a deployment or schedule they configured
    stops acting for them)."""
    from django.contrib.auth.models import Group

    from oktoscripts.runs.submit import asubmit_run

    operator = people["Operator"]
    await sync_to_async(operator.groups.set)([await Group.objects.aget(name="Viewer")])
    run = await asubmit_run(
        "print('hello') return 1", script_name="hello", started_by="user", user=operator, nc=nc
    )
    run = await wait_for_status(run.id, ("succeeded", "failed"))
    assert run.status == "failed"
    assert run.error["message"] == (
        "refused: user 'operator1' (role Viewer) does not hold the permission "
        "'scripts.run_scripts'; the run acts for this user"
    )
    admin = people["Admin"]
    admin.is_active = False
    await sync_to_async(admin.save)()
    run = await asubmit_run("return 1", script_name="hello", started_by="user", user=admin, nc=nc)
    run = await wait_for_status(run.id, ("succeeded", "failed"))
    assert run.error["message"].startswith("refused: user 'admin1' is deactivated")


async def _fire(schedule_id: int, nc):  # noqa: ANN001, ANN202
    """Fire one tick of a schedule now; the finished Run."""
    from oktoscripts.automations import schedules
    from oktoscripts.automations.models import ScheduleTick

    claim = schedules.Claim(schedule_id, datetime.now(UTC), True, 0, "started")
    await ScheduleTick.objects.acreate(schedule_id=schedule_id, tick=claim.tick, outcome="started")
    run_id = await schedules.fire(claim, nc)
    assert run_id is not None
    return await wait_for_status(run_id, ("succeeded", "failed"))


async def _api(user, method: str, url: str, body: dict | None = None) -> dict:  # noqa: ANN001
    from django.test import Client

    client = Client()
    await sync_to_async(client.force_login)(user)
    call = getattr(client, method.lower())
    response = await sync_to_async(call)(
        url, json.dumps(body or {}), content_type="application/json"
    )
    assert response.status_code in (200, 201), response.content
    return response.json()


async def test_a_schedule_acts_for_who_last_configured_it_bounded_by_the_latest_code(
    people, platform, nc
):
    """An Operator's schedule may not delete devices; once an Admin edits it, it
    may. When it runs "the latest saved version", an Author who saves a new
    version does not borrow the Admin's rights: the version's author must hold
    the permission too."""
    registry, _ = platform
    script = await _script(people["Admin"], "cleanup.lua", DELETE)
    schedule = await _api(
        people["Operator"],
        "POST",
        "/api/schedules",
        {"name": "nightly cleanup", "script_id": script.pk, "version": None, "cron": "0 3 * * *"},
    )
    assert schedule["configured_by"] == "operator1"

    run = await _fire(schedule["id"], nc)
    assert run.user_id == people["Operator"].pk and run.started_by == "schedule"
    assert "user 'operator1' (role Operator) does not hold" in run.error["message"]
    assert await sync_to_async(registry.get)("CPE1") is not None

    # An Author saves new code into the script the schedule follows; an Admin then
    # edits the schedule (its time): the runs act for the Admin, bounded by the Author.
    from oktoscripts.scripts.editing import save_version

    await sync_to_async(save_version)(people["Author"], script, 'print("by the author")\n' + DELETE)
    edited = await _api(
        people["Admin"], "PATCH", f"/api/schedules/{schedule['id']}", {"cron": "0 4 * * *"}
    )
    assert edited["configured_by"] == "admin1"
    run = await _fire(schedule["id"], nc)
    assert run.user_id == people["Admin"].pk and run.bounded_by_author
    assert run.error["message"] == (
        "delete_device: refused: user 'author1' (role Author) does not hold "
        "the permission 'devices.delete_device'; it saved the code that runs (version 2 of "
        "'cleanup.lua'), which this automation runs as 'the latest saved version': pin a "
        "version, or have it saved by someone who holds the permission"
    )
    assert await sync_to_async(registry.get)("CPE1") is not None

    # Pinned on the Author's version by the Admin, it runs with the Admin's rights.
    await _api(people["Admin"], "PATCH", f"/api/schedules/{schedule['id']}", {"version": 2})
    run = await _fire(schedule["id"], nc)
    assert (run.status, run.result, run.bounded_by_author) == ("succeeded", True, False)
    assert await sync_to_async(registry.get)("CPE1") is None


async def test_every_automation_records_who_configured_it(people, platform):
    """Bulk runs, triggers and deployments act for whoever last created, changed,
    started or retried them."""
    from oktoscripts.automations.models import BulkRun, BulkRunItem, Deployment

    script = await _script(people["Admin"], "listen.lua", "return 1")
    operator, admin = people["Operator"], people["Admin"]
    trigger = await _api(
        operator,
        "POST",
        "/api/triggers",
        {"name": "on boot", "kind": "cwmp_event", "event": "1", "script_id": script.pk},
    )
    assert trigger["configured_by"] == "operator1"
    trigger = await _api(admin, "PATCH", f"/api/triggers/{trigger['id']}", {"enabled": False})
    assert trigger["configured_by"] == "admin1"

    deployment = await _api(operator, "POST", "/api/deployments", {"script_id": script.pk})
    assert deployment["configured_by"] == "operator1"
    await _api(operator, "POST", f"/api/deployments/{deployment['id']}/stop")
    await _api(admin, "POST", f"/api/deployments/{deployment['id']}/start")
    dep = await Deployment.objects.select_related("configured_by").aget(pk=deployment["id"])
    assert dep.acting_for() == {"user": admin, "bounded_by_author": False}

    from oktoscripts.automations import bulk

    registry, _ = platform
    record = await sync_to_async(bulk.create)(
        script=script,
        version=None,
        args={},
        device_filter={},
        concurrency=1,
        user=operator,
        registry=registry,
    )
    assert record.configured_by == operator
    await BulkRun.objects.filter(pk=record.pk).aupdate(status="stopped")
    await BulkRunItem.objects.filter(bulk_id=record.pk).aupdate(status="failed")
    retried = await _api(admin, "POST", f"/api/bulk-runs/{record.pk}/retry")
    assert (retried["retried"], retried["configured_by"]) == (1, "admin1")
    record = await BulkRun.objects.select_related("configured_by").aget(pk=record.pk)
    assert record.acting_for() == {"user": admin, "bounded_by_author": False}


def test_only_the_bindings_that_change_the_registry_or_its_secrets_are_guarded():
    """Each binding was looked at: the guarded ones need the permission REST asks
    for the same change; the others read, or talk to devices (what running a
    script at all allows: scripts.run_scripts, checked when the run starts). A new
    binding must be put in one list or the other."""
    from oktoscripts import permissions
    from oktoscripts.bindings import all_bindings

    guarded = {b.name: b.permission for b in all_bindings() if b.permission}
    assert guarded == {
        "delete_device": permissions.DELETE_DEVICE,
        "create_or_update_device_credential": permissions.ADMINISTER,
    }
    unguarded = {b.name for b in all_bindings() if not b.permission}
    assert unguarded == {
        "get_device",
        "get_all_devices",
        "listen_to_new_device",
        "refresh_device_parameters",
        "send_cwmp_message",
        "send_cwmp_async_message",
        "listen_to_cwmp_event",
        "send_usp_message",
        "sleep",
        "generate_random_string",
        "json_encode",
        "json_decode",
        "log",
    }


def test_the_permission_names_are_the_ones_rest_and_the_roles_use():
    from ide.api.devices import ALIAS_PERMISSION, DELETE_PERMISSION
    from oktoscripts import permissions
    from oktoscripts.roles import DEVICE_ALIAS, DEVICE_DELETE, Capability

    assert DELETE_PERMISSION == permissions.DELETE_DEVICE == ".".join(DEVICE_DELETE[::2])
    assert ALIAS_PERMISSION == permissions.CHANGE_DEVICE_ALIAS == ".".join(DEVICE_ALIAS[::2])
    assert permissions.ADMINISTER == f"scripts.{Capability.ADMIN.value}"
    assert permissions.RUN_SCRIPTS == f"scripts.{Capability.RUN.value}"
