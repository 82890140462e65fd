"""Test fixtures over REST and from the run's page: who may save, run, read and
delete them, what is refused and why, and what a saved fixture keeps."""

from __future__ import annotations

import pytest

from oktoscripts.runs.models import Run
from oktoscripts.scripts import editing
from oktoscripts.scripts.models import AuditEvent, Fixture
from tests.ide import conftest as _ide

fast_passwords, users, client_for = _ide.fast_passwords, _ide.users, _ide.client_for
JSON = "application/json"

RECORDING = {
    "calls": [
        {
            "protocol": "cwmp",
            "target": "SN-1",
            "line": 1,
            "at": 1.0,
            "latency_s": 0.01,
            "request": {"method": "GetParameterValues", "names": ["A.B"]},
            "answer": {"ok": True, "result": {"A.B": "x"}},
        }
    ],
    "truncated": False,
}


@pytest.fixture
def recorded(users, nats_url):
    script = editing.create_script(users["author"], "facts", "return 1")
    run = Run.objects.create(
        script_name="facts",
        code="return 1",
        script_version=script.latest,
        status="succeeded",
        started_by="user",
        user=users["operator"],
        args={"serial": "SN-1"},
        result={"b": "x"},
        metrics={"recording": RECORDING},
    )
    run.output.create(seq=1, stream="stdout", text="read x", time=run.created)
    run.output.create(seq=2, stream="call", text="GetParameterValues 10 ms", time=run.created)
    run.output.create(seq=3, stream="log", level="warn", text="careful", time=run.created)
    return script, run


def test_fixtures_over_rest_by_role(client_for, recorded):
    script, run = recorded
    url = f"/api/scripts/{script.pk}/fixtures"
    body = {"run_id": str(run.pk), "name": "basic"}
    for role in ("viewer", "operator"):  # saving a fixture edits the script's tests
        assert client_for(role).post(url, body, content_type=JSON).status_code == 403
    author = client_for("author")
    made = author.post(url, body, content_type=JSON)
    assert made.status_code == 201, made.content
    fixture = made.json()
    assert fixture["calls"] == 1 and fixture["args"] == {"serial": "SN-1"}
    assert fixture["expected_status"] == "succeeded" and fixture["expected_result"] == {"b": "x"}
    # The script's own lines, without the platform's device-call lines.
    assert fixture["expected_output"] == ["read x", "[warn] careful"]
    assert fixture["source_run"] == str(run.pk) and fixture["source_version"] == 1
    event = AuditEvent.objects.filter(action="fixture.create").latest("id")
    assert event.details == {"fixture": "basic", "run": str(run.pk)}

    again = author.post(url, body, content_type=JSON)
    assert again.status_code == 409 and "has a fixture 'basic' already" in again.json()["error"]
    for name in ("all", "", "../x"):
        refused = author.post(url, {**body, "name": name}, content_type=JSON)
        assert refused.status_code == 409, name
    other = editing.create_script(run.user, "other", "return 2")
    wrong = author.post(f"/api/scripts/{other.pk}/fixtures", body, content_type=JSON)
    assert wrong.status_code == 400 and "a run of 'facts', not of 'other'" in wrong.json()["error"]
    renamed = Run.objects.create(
        script_name="facts-before-renaming",
        code="return 1",
        script_version=script.latest,
        status="succeeded",
        started_by="user",
        metrics={"recording": RECORDING},
    )
    kept = author.post(url, {"run_id": str(renamed.pk), "name": "old name"}, content_type=JSON)
    assert kept.status_code == 201, kept.content  # its version's script, whatever its name then
    custom = author.post(
        url,
        {**body, "name": "must fail", "expected_status": "failed", "check_output": False},
        content_type=JSON,
    ).json()
    assert custom["expected_status"] == "failed" and custom["expected_output"] is None
    chosen = author.post(
        url, {**body, "name": "nil result", "expected_result": None}, content_type=JSON
    ).json()
    assert chosen["expected_result"] is None

    listed = client_for("viewer").get(url).json()["results"]
    assert [f["name"] for f in listed] == ["basic", "must fail", "nil result", "old name"]
    assert listed[0]["last_run"] is None

    runs_url = f"/api/scripts/{script.pk}/fixture-runs"
    assert author.post(runs_url, {}, content_type=JSON).status_code == 403  # runs need run_scripts
    operator = client_for("operator")
    missing = operator.post(runs_url, {"names": ["nope"]}, content_type=JSON)
    assert missing.status_code == 404 and "no fixture 'nope'" in missing.json()["error"]
    no_version = operator.post(runs_url, {"version": 9}, content_type=JSON)
    assert no_version.status_code == 409 and "has no version 9" in no_version.json()["error"]
    started = operator.post(runs_url, {"names": ["basic"]}, content_type=JSON)
    assert started.status_code == 201, started.content
    [entry] = started.json()["runs"]
    replay = Run.objects.get(pk=entry["run_id"])
    assert replay.mode == "replay" and replay.fixture.name == "basic"
    assert replay.args == {"serial": "SN-1"} and replay.script_version_id == script.latest_id
    shown = client_for("viewer").get(f"{url}/basic").json()
    assert shown["last_run"]["run_id"] == entry["run_id"] and shown["last_run"]["passed"] is None

    assert operator.delete(f"{url}/basic").status_code == 403
    assert author.delete(f"{url}/basic").status_code == 204
    assert not Fixture.objects.filter(name="basic").exists()
    assert Run.objects.filter(pk=entry["run_id"]).exists()  # its runs stay
    assert author.get(f"{url}/basic").status_code == 404


def test_a_plan_or_an_unfinished_run_cannot_become_a_fixture(client_for, recorded):
    script, run = recorded
    url = f"/api/scripts/{script.pk}/fixtures"
    Run.objects.filter(pk=run.pk).update(status="running")
    busy = client_for("author").post(url, {"run_id": str(run.pk), "name": "x"}, content_type=JSON)
    assert busy.status_code == 409 and "only a finished run" in busy.json()["error"]
    Run.objects.filter(pk=run.pk).update(status="succeeded", mode="plan")
    plan = client_for("author").post(url, {"run_id": str(run.pk), "name": "x"}, content_type=JSON)
    assert plan.status_code == 409


def test_save_as_fixture_from_the_run_page(client_for, recorded):
    script, run = recorded
    page = client_for("author").get(f"/runs/{run.pk}/").content.decode()
    assert 'id="save-fixture"' in page
    assert 'id="save-fixture"' not in client_for("viewer").get(f"/runs/{run.pk}/").content.decode()
    assert (
        'id="save-fixture"' not in client_for("operator").get(f"/runs/{run.pk}/").content.decode()
    )
    assert client_for("operator").post(f"/runs/{run.pk}/fixture", {"name": "p"}).status_code == 403
    saved = client_for("author").post(
        f"/runs/{run.pk}/fixture",
        {"name": "from page", "expected_result": '{"b": "y"}'},
        follow=True,
    )
    assert "Saved fixture &#x27;from page&#x27;" in saved.content.decode()
    fixture = Fixture.objects.get(name="from page")
    assert fixture.expected_result == {"b": "y"} and fixture.expected_output is None  # unchecked
    bad = client_for("author").post(
        f"/runs/{run.pk}/fixture", {"name": "bad", "expected_result": "{"}, follow=True
    )
    assert "not valid JSON" in bad.content.decode()
    editor = client_for("viewer").get(f"/scripts/{script.pk}/").content.decode()
    assert 'id="pane-fixtures"' in editor and 'id="fixtures-run-all"' not in editor
    assert (
        'id="fixtures-run-all"'
        in client_for("operator").get(f"/scripts/{script.pk}/").content.decode()
    )


def test_the_first_difference_names_the_place():
    from oktoscripts.scripts.fixtures import first_difference

    assert first_difference({"a": [1, 2.0]}, {"a": [1, 2]}, "result") == ""  # one number
    assert first_difference({"a": [1, 2]}, {"a": [1, 3]}, "result") == (
        "result.a[2]: expected 2, got 3"
    )
    assert first_difference({"a": 1}, {"b": 1}, "result") == "result.a: expected 1, missing"
    assert first_difference(True, 1, "result") == "result: expected true, got 1"
    assert first_difference([1], [1, 2], "result") == "result: expected 1 items, got 2"
