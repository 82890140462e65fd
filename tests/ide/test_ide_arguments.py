"""Argument declarations (a version's), presets (the script's) and the last
arguments (a person's), over REST and through the roles."""

from __future__ import annotations

import pytest

from oktoscripts.runs.models import Run
from oktoscripts.scripts import editing
from oktoscripts.scripts.models import AuditEvent

DECLARED = [
    {"name": "ssid", "type": "string", "default": "home", "description": "the SSID to set"},
    {"name": "band", "type": "number", "default": 5, "description": ""},
    {"name": "dry", "type": "boolean", "default": None, "description": "only say what"},
    {"name": "cpe", "type": "device", "default": None, "description": ""},
    {"name": "opts", "type": "json", "default": {"retries": 2}, "description": ""},
]


@pytest.fixture
def script(users):
    return editing.create_script(users["author"], "wifi", "return args")


def _save(client, script, content="return args", **body):
    return client.post(
        f"/api/scripts/{script.pk}/versions",
        {"content": content, **body},
        content_type="application/json",
    )


def test_declarations_belong_to_the_version_saved_with_them(client_for, script):
    author = client_for("author")
    saved = _save(author, script, arguments=DECLARED)
    assert saved.status_code == 201, saved.content
    assert saved.json()["number"] == 2 and saved.json()["arguments"] == DECLARED
    # Saving the same again makes no version; changing only a declaration does.
    assert _save(author, script, arguments=DECLARED).json()["number"] == 2
    changed = [{**DECLARED[0], "default": "office"}, *DECLARED[1:]]
    assert _save(author, script, arguments=changed).json()["number"] == 3
    # A save without "arguments" keeps the latest version's.
    assert _save(author, script, content="return 1").json()["arguments"] == changed
    v2 = author.get(f"/api/scripts/{script.pk}/versions/2").json()
    assert v2["arguments"] == DECLARED  # immutable with its version
    restored = author.post(f"/api/scripts/{script.pk}/versions/2/restore").json()
    assert restored["arguments"] == DECLARED


@pytest.mark.parametrize(
    "declaration, message",
    [
        ({"name": "n", "type": "number", "default": "five"}, "its default is not a number"),
        ({"name": "n", "type": "float"}, "type"),
        ({"name": "", "type": "string"}, "name"),
        ({"name": "n", "kind": "string"}, "unknown declaration field 'kind'"),
    ],
)
def test_wrong_declarations_are_refused(client_for, script, declaration, message):
    refused = _save(client_for("author"), script, arguments=[declaration])
    assert refused.status_code == 400 and message in str(refused.json())


def test_declared_twice_is_refused(client_for, script):
    twice = [{"name": "a", "type": "string"}, {"name": "a", "type": "number"}]
    refused = _save(client_for("author"), script, arguments=twice)
    assert refused.status_code == 400 and "declared twice" in refused.json()["error"]


def test_a_run_gets_the_defaults_and_the_declared_types(client_for, script, nats_url):
    _save(client_for("author"), script, arguments=DECLARED)
    operator = client_for("operator")
    started = operator.post(
        "/api/runs",
        {"script_id": script.pk, "args": {"band": 2.4, "cpe": "CPE1"}},
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    run = Run.objects.get(pk=started.json()["id"])
    assert run.args == {"band": 2.4, "cpe": "CPE1", "ssid": "home", "opts": {"retries": 2}}
    wrong = operator.post(
        "/api/runs",
        {"script_id": script.pk, "args": {"band": "five"}},
        content_type="application/json",
    )
    assert wrong.status_code == 400 and "'band' must be a number" in wrong.json()["error"]


def test_presets_are_saved_by_editors_and_used_by_runners(client_for, script, nats_url):
    url = f"/api/scripts/{script.pk}/presets"
    body = {"args": {"ssid": "lab", "band": 2.4}}
    # Runners and viewers may not save or delete one.
    for role in ("viewer", "operator"):
        put = client_for(role).put(f"{url}/lab", body, content_type="application/json")
        assert put.status_code == 403
    author = client_for("author")
    created = author.put(f"{url}/lab", body, content_type="application/json")
    assert created.status_code == 201 and created.json()["updated_by"] == "author"
    again = author.put(f"{url}/lab", {"args": {"ssid": "lab2"}}, content_type="application/json")
    assert again.status_code == 200
    author.put(f"{url}/office", {"args": {"ssid": "o"}}, content_type="application/json")
    # Whoever reads the script sees them (and runs with their values).
    listed = client_for("operator").get(url).json()["presets"]
    assert [(p["name"], p["args"]) for p in listed] == [
        ("lab", {"ssid": "lab2"}),
        ("office", {"ssid": "o"}),
    ]
    assert client_for("viewer").get(url).status_code == 200
    assert client_for("nobody").get(url).status_code == 403
    assert client_for("operator").delete(f"{url}/lab").status_code == 403
    assert author.delete(f"{url}/lab").status_code == 204
    assert author.delete(f"{url}/lab").status_code == 404
    bad = author.put(f"{url}/x", {"args": ["not", "an", "object"]}, content_type="application/json")
    assert bad.status_code == 400
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"script.preset.save", "script.preset.delete"} <= actions


def test_the_last_arguments_are_kept_per_person_on_the_server(client_for, script, nats_url):
    url = f"/api/scripts/{script.pk}/last-arguments"
    operator, admin = client_for("operator"), client_for("admin")
    assert operator.get(url).json() == {"args": {}}
    operator.post(
        "/api/runs",
        {"script_id": script.pk, "args": {"zeta": 1, "alpha": "a"}},
        content_type="application/json",
    )
    # In the order given, for this person only.
    assert list(operator.get(url).json()["args"].items()) == [("zeta", 1), ("alpha", "a")]
    assert admin.get(url).json() == {"args": {}}
    # The editor page hands them to the arguments panel.
    page = operator.get(f"/scripts/{script.pk}/").content.decode()
    assert '"lastArgs": {"zeta": 1, "alpha": "a"}' in page
    # Only those who run scripts have last arguments.
    assert client_for("viewer").get(url).status_code == 403


def test_a_draft_runs_with_the_arguments_given(client_for, script, nats_url):
    # Its declarations may be unsaved edits too: the saved ones neither fill nor refuse.
    _save(client_for("author"), script, arguments=DECLARED)
    started = client_for("admin").post(
        "/api/runs",
        {"script_id": script.pk, "code": "return args", "args": {"band": "2.4 GHz"}},
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    assert Run.objects.get(pk=started.json()["id"]).args == {"band": "2.4 GHz"}
