"""Roles are enforced on every page and every REST endpoint, in the one role table."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, get_resolver

from oktoscripts.roles import ROLES, Capability
from oktoscripts.scripts import editing as scripts
from oktoscripts.scripts.models import Script


def ide_views():
    """Every view of the IDE's URL table (REST dispatchers expanded per method)."""
    for pattern in get_resolver().url_patterns:
        patterns = getattr(pattern, "url_patterns", [pattern])
        for p in patterns:
            if not isinstance(p, URLPattern):
                continue
            by_method = getattr(p.callback, "by_method", None)
            if by_method:
                for method, view in by_method.items():
                    yield f"{method} {p.pattern}", view
            elif p.callback.__module__.startswith("ide"):
                yield f"{p.pattern}", p.callback


def test_every_ide_view_declares_the_capability_it_needs():
    missing = [name for name, view in ide_views() if not hasattr(view, "capability")]
    assert missing == []


def test_role_table():
    assert set(ROLES["Viewer"]) == {Capability.READ}
    assert Capability.EDIT in ROLES["Author"] and Capability.RUN not in ROLES["Author"]
    assert Capability.RUN in ROLES["Operator"] and Capability.EDIT not in ROLES["Operator"]
    assert set(ROLES["Admin"]) == set(Capability)


def test_groups_exist_with_their_permissions(db):
    from django.contrib.auth.models import Group

    perms = {
        g.name: set(g.permissions.values_list("codename", flat=True))
        for g in Group.objects.filter(name__in=ROLES)
    }
    assert perms["Viewer"] == {"read"}
    assert perms["Operator"] >= {"read", "run_scripts"} and "edit_scripts" not in perms["Operator"]


@pytest.fixture
def script(users):
    return scripts.create_script(users["admin"], "hello", "print('hi')\nreturn 1\n")


READ_PAGES = ["/scripts/", "/runs/", "/reference/", "/account/tokens/"]


@pytest.mark.parametrize("role", ["viewer", "author", "operator", "admin", "superuser"])
def test_every_role_reads(client_for, script, role):
    client = client_for(role)
    for url in READ_PAGES + [
        f"/scripts/{script.pk}/",
        f"/scripts/{script.pk}/versions/",
        f"/scripts/{script.pk}/versions/1/",
    ]:
        assert client.get(url).status_code == 200, url


def test_signed_out_users_are_sent_to_login_and_api_says_401(client, script):
    response = client.get(f"/scripts/{script.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/api/scripts").status_code == 401


def test_a_user_without_role_sees_nothing(client_for, script):
    client = client_for("nobody")
    assert client.get("/scripts/").status_code == 403
    assert client.get(f"/api/scripts/{script.pk}").status_code == 403


def test_admin_pages_only_for_admins(client_for):
    for role in ("viewer", "author", "operator"):
        assert client_for(role).get("/audit/").status_code == 403
        assert client_for(role).get("/users/").status_code == 403
    assert client_for("admin").get("/audit/").status_code == 200
    assert client_for("superuser").get("/users/").status_code == 200


@pytest.mark.parametrize(
    "role,allowed", [("viewer", False), ("operator", False), ("author", True), ("admin", True)]
)
def test_only_authors_and_admins_edit(client_for, script, role, allowed):
    client = client_for(role)
    api = client.post(
        f"/api/scripts/{script.pk}/versions",
        {"content": f"return '{role}'"},
        content_type="application/json",
    )
    assert api.status_code == (201 if allowed else 403), api.content
    if not allowed:
        assert "does not allow" in api.json()["error"]
    page = client.post("/scripts/new", {"name": f"by-{role}"})
    assert (page.status_code == 302) == allowed
    assert Script.objects.filter(name=f"by-{role}").exists() == allowed
    if allowed:  # the template is not a version: the editor shows it unsaved
        made = Script.objects.get(name=f"by-{role}")
        assert made.latest is None and not made.versions.exists()
        editor = client.get(f"/scripts/{made.pk}/").content.decode()
        assert f"-- by-{role}" in editor and "not saved yet" in editor
    rename = client.post(f"/scripts/{script.pk}/settings", {"name": "renamed"})
    assert rename.status_code == (302 if allowed else 403)


@pytest.mark.parametrize("role", ["viewer", "author"])
def test_viewers_and_authors_cannot_run_or_cancel(client_for, script, role):
    client = client_for(role)
    response = client.post("/api/runs", {"script_id": script.pk}, content_type="application/json")
    assert response.status_code == 403
    cancel = client.post("/api/runs/00000000-0000-0000-0000-000000000001/cancel")
    assert cancel.status_code == 403


def test_the_editor_offers_only_what_the_role_allows(client_for, script):
    viewer = client_for("viewer").get(f"/scripts/{script.pk}/").content.decode()
    assert 'id="run-btn"' not in viewer and 'id="save-btn"' not in viewer
    # What the role allows, not what it cannot do: no "+ Add", no "when you run".
    assert 'id="add-arg"' not in viewer and "when you run" not in viewer
    assert "Operators and Admins run them" in viewer
    assert '"canEdit": false' in viewer and '"canRun": false' in viewer
    operator = client_for("operator").get(f"/scripts/{script.pk}/").content.decode()
    assert 'id="run-btn"' in operator and 'id="save-btn"' not in operator
    author = client_for("author").get(f"/scripts/{script.pk}/").content.decode()
    assert 'id="save-btn"' in author and 'id="run-btn"' not in author


def test_session_writes_need_csrf_but_tokens_do_not(client_for, users, script):
    from ide.models import ApiToken

    client = client_for("author", enforce_csrf=True)
    response = client.post(
        f"/api/scripts/{script.pk}/versions",
        {"content": "return 2"},
        content_type="application/json",
    )
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    form = client.post("/scripts/new", {"name": "no-csrf"})
    assert form.status_code == 403
    _, raw = ApiToken.issue(users["author"], "ci")
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(
        f"/api/scripts/{script.pk}/versions",
        {"content": "return 3"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 201


def test_role_changes_are_audited(client_for, users):
    admin = client_for("admin")
    response = admin.post(f"/users/{users['viewer'].pk}/role", {"role": "Operator"})
    assert response.status_code == 302
    users["viewer"].refresh_from_db()
    assert users["viewer"].has_perm("scripts.run_scripts")
    from oktoscripts.scripts.models import AuditEvent

    event = AuditEvent.objects.get(action="role.change")
    assert (event.actor_name, event.target, event.details["after"]) == (
        "admin",
        "viewer",
        "Operator",
    )


def test_unsaved_text_runs_as_a_draft_without_making_a_version(client_for, script, nats_url):
    """Run with unsaved edits: the exact text runs and stays with the run; the
    history keeps only what was saved."""
    from oktoscripts.runs.models import Run

    versions = script.versions.count()
    draft = "print('draft')\nreturn 2\n"
    response = client_for("admin").post(
        "/api/runs", {"script_id": script.pk, "code": draft}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.code == draft and run.script_version_id is None and run.trigger == "draft"
    assert response.json()["version"] is None
    assert script.versions.count() == versions
    # Text the user could not save is not theirs to run either.
    refused = client_for("operator").post(
        "/api/runs", {"script_id": script.pk, "code": draft}, content_type="application/json"
    )
    assert refused.status_code == 403 and "edit" in refused.json()["error"]
