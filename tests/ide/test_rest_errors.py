"""REST answers JSON whatever goes wrong, refuses what it would otherwise ignore,
and documents what it returns (django-ninja, ide/api/app.py)."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from oktoscripts.scripts import editing


@pytest.fixture
def script(users):
    return editing.create_script(users["admin"], "hello", "return 1\n")


def _json_error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.content[:200])
    assert response["Content-Type"] == "application/json", response["Content-Type"]
    return response.json()["error"]


def _send(client: Client, method: str, path: str, body: object = None):
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(path, data, content_type="application/json")


def test_unknown_records_are_json_404s(client_for, script):
    operator = client_for("operator")
    assert "not found" in _json_error(operator.get("/api/scripts/9999"), 404)
    assert "not found" in _json_error(operator.get(f"/api/runs/{uuid.uuid4()}"), 404)
    assert "not found" in _json_error(operator.get(f"/api/runs/{uuid.uuid4()}/output"), 404)
    assert "not found" in _json_error(operator.get("/api/scripts/1/versions/99"), 404)
    for path in ("/api/runs", "/api/schedules"):
        body = (
            {"script_id": 1234, "name": "n", "cron": "0 3 * * *"}
            if "sched" in path
            else {"script_id": 1234}
        )
        assert "not found" in _json_error(_send(operator, "post", path, body), 404)
    assert "no such endpoint" in _json_error(operator.get("/api/nothing/here"), 404)
    assert "no such endpoint" in _json_error(operator.get("/api/runs/not-a-uuid"), 404)


def test_unknown_and_read_only_fields_are_refused(client_for, script):
    from oktoscripts.automations.models import Schedule

    operator = client_for("operator")
    created = _send(
        operator,
        "post",
        "/api/schedules",
        {"name": "nightly", "script_id": script.pk, "cron": "0 3 * * *"},
    )
    assert created.status_code == 201, created.content
    schedule_id = created.json()["id"]
    other = editing.create_script(None, "other", "return 2\n")
    refused = _send(operator, "patch", f"/api/schedules/{schedule_id}", {"script_id": other.pk})
    assert "unknown field 'script_id'" in _json_error(refused, 400)
    assert Schedule.objects.get(pk=schedule_id).script_id == script.pk
    assert "'colour'" in _json_error(
        _send(operator, "post", "/api/runs", {"script_id": script.pk, "colour": "red"}), 400
    )
    author = client_for("author")
    assert "unknown field 'id'" in _json_error(
        _send(author, "patch", f"/api/scripts/{script.pk}", {"id": 7, "name": "x"}), 400
    )
    wrong_type = _send(author, "patch", f"/api/scripts/{script.pk}", {"name": 5})
    assert "'name'" in _json_error(wrong_type, 400)
    assert wrong_type.json()["fields"] == {"name": "Input should be a valid string"}


def test_every_error_status_is_json(client_for, client, script, monkeypatch):
    from ninja.errors import Throttled

    from ide.api import scripts as scripts_api

    viewer = client_for("viewer")
    assert "authentication required" in _json_error(client.get("/api/scripts"), 401)
    assert "authentication required" in _json_error(client.get("/api/nothing"), 401)
    assert "revoked" in _json_error(
        Client(headers={"Authorization": "Bearer okt_nope"}).get("/api/scripts"), 401
    )
    assert "needs 'edit_scripts'" in _json_error(
        _send(viewer, "post", "/api/scripts", {"name": "x"}), 403
    )
    assert "CSRF" in _json_error(
        _send(client_for("author", enforce_csrf=True), "post", "/api/scripts", {"name": "x"}), 403
    )
    not_allowed = viewer.put("/api/scripts")
    assert "method not allowed" in _json_error(not_allowed, 405)
    assert set(not_allowed["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert "not valid JSON" in _json_error(viewer.post("/api/check", "{", "application/json"), 400)
    too_big = viewer.post("/api/check", json.dumps({"source": "x" * 300_000}), "application/json")
    assert "at most 200,000 characters" in _json_error(too_big, 413)

    def broken() -> list:
        raise RuntimeError("a bug")

    monkeypatch.setattr(scripts_api, "api_entries", broken)
    assert "internal error" in _json_error(viewer.get("/api/bindings"), 500)

    def throttled() -> list:
        raise Throttled(wait=5)

    monkeypatch.setattr(scripts_api, "api_entries", throttled)
    assert "Too many requests" in _json_error(viewer.get("/api/bindings"), 429)


def test_the_openapi_document_has_real_response_schemas(client_for):
    schema = client_for("viewer").get("/api/openapi.json").json()
    get_script = schema["paths"]["/api/scripts/{script_id}"]["get"]
    assert get_script["x-required-capability"] == "read"
    ref = get_script["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    detail = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"id", "name", "content", "limits", "version"} <= set(detail["properties"])
    patch = schema["paths"]["/api/schedules/{schedule_id}"]["patch"]
    body_ref = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    change = schema["components"]["schemas"][body_ref.rsplit("/", 1)[-1]]
    assert "script_id" not in change["properties"] and change["additionalProperties"] is False
    assert schema["components"]["securitySchemes"]["Access"]["scheme"] == "bearer"


def test_the_interactive_docs_are_for_signed_in_users_from_our_own_files(client, client_for):
    anonymous = client.get("/api/docs")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    page = client_for("viewer").get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html and "/api/openapi.json" in html
    assert "cdn" not in html.lower()
    # No inline script: every <script> has a src, or is JSON data.
    for tag in html.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening, opening
    assert client_for("nobody").get("/api/docs").status_code == 403
