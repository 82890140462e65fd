"""Scripts and versions: immutable versions, diff, restore, delete/undelete, REST API."""

from __future__ import annotations

import hashlib

import pytest

from ide.diff import side_by_side
from oktoscripts.scripts import editing as scripts
from oktoscripts.scripts.models import AuditEvent, ImmutableError, Script, ScriptVersion


@pytest.fixture
def script(users):
    return scripts.create_script(
        users["author"], "inventory", "print(1)\n", folder="ops/daily", tags="report, Nightly"
    )


def test_each_save_makes_an_immutable_version(users, script):
    v2 = scripts.save_version(users["author"], script, "print(2)\n", "second")
    assert (v2.number, v2.message, v2.author.username) == (2, "second", "author")
    assert v2.sha256 == hashlib.sha256(b"print(2)\n").hexdigest()
    assert scripts.save_version(users["author"], script, "print(2)\n") == v2  # unchanged: no new
    v2.content = "changed"
    with pytest.raises(ImmutableError):
        v2.save()
    with pytest.raises(ImmutableError):
        v2.delete()
    assert ScriptVersion.objects.get(pk=v2.pk).content == "print(2)\n"
    assert Script.objects.get(pk=script.pk).latest == v2
    assert script.folder == "ops/daily" and script.tags == "report nightly"


def test_restore_makes_a_new_version_with_the_old_content(client_for, users, script):
    scripts.save_version(users["author"], script, "print(2)\n")
    response = client_for("author").post(f"/scripts/{script.pk}/versions/1/restore")
    assert response.status_code == 302
    latest = Script.objects.get(pk=script.pk).latest
    assert (latest.number, latest.content, latest.message) == (
        3,
        "print(1)\n",
        "Restored version 1",
    )
    assert AuditEvent.objects.filter(action="script.save", target="inventory").count() == 3


def test_side_by_side_diff_marks_changed_characters():
    rows = side_by_side("a\nkeep\nold line\n", "a\nkeep\nnew line\nadded\n")
    kinds = [r.kind for r in rows]
    assert kinds == ["same", "same", "change", "insert"]
    assert "<del>old</del>" in rows[2].left and "<ins>new</ins>" in rows[2].right
    assert side_by_side("<b>\n", "<i>\n")[0].left == "&lt;<del>b</del>&gt;"  # escaped


def test_long_unchanged_runs_are_folded():
    old = "\n".join(f"line {i}" for i in range(100))
    new = old.replace("line 50", "line fifty")
    rows = side_by_side(old, new)
    assert [r.kind for r in rows].count("skip") == 2 and len(rows) < 20


def test_diff_page_shows_both_versions(client_for, users, script):
    scripts.save_version(users["author"], script, "print(1)\nprint('more')\n", "more")
    page = client_for("viewer").get(f"/scripts/{script.pk}/diff?a=1&b=2")
    assert page.status_code == 200
    html = page.content.decode()
    assert "v1" in html and "v2" in html and "print(&#x27;more&#x27;)" in html
    assert client_for("viewer").get(f"/scripts/{script.pk}/diff?a=1&b=9").status_code == 404


def test_delete_keeps_history_and_restore_brings_it_back(client_for, script):
    author = client_for("author")
    assert author.post(f"/scripts/{script.pk}/delete").status_code == 302
    author.get("/scripts/")  # shows (and so consumes) the "Deleted" message
    assert "<strong>inventory</strong>" not in author.get("/scripts/").content.decode()
    assert "<strong>inventory</strong>" in author.get("/scripts/?deleted=1").content.decode()
    saved = author.post(
        f"/api/scripts/{script.pk}/versions", {"content": "x"}, content_type="application/json"
    )
    assert saved.status_code == 400 and "deleted" in saved.json()["error"]
    assert author.post(f"/scripts/{script.pk}/undelete").status_code == 302
    assert ScriptVersion.objects.filter(script=script).count() == 1
    assert not Script.objects.get(pk=script.pk).deleted


def test_list_search_folders_and_tags(client_for, users, script):
    scripts.create_script(users["author"], "reboot-all", "", folder="ops", tags="danger")
    viewer = client_for("viewer")
    assert "reboot-all" not in viewer.get("/scripts/?q=invent").content.decode()
    assert "inventory" in viewer.get("/scripts/?folder=ops").content.decode()
    assert "inventory" not in viewer.get("/scripts/?tag=danger").content.decode()
    assert "reboot-all" in viewer.get("/scripts/?tag=danger").content.decode()


def test_names_are_unique_and_checked(users, script, client_for):
    with pytest.raises(scripts.ScriptError, match="already exists"):
        scripts.create_script(users["author"], "inventory")
    response = client_for("author").post(
        "/api/scripts", {"name": "../etc"}, content_type="application/json"
    )
    assert response.status_code == 400 and "script name" in response.json()["error"]


def test_rest_api_scripts_and_versions(client_for, script):
    api = client_for("author")
    created = api.post(
        "/api/scripts", {"name": "api-made", "content": "return 1"}, content_type="application/json"
    ).json()
    assert created["version"] == 1
    sid = created["id"]
    api.post(
        f"/api/scripts/{sid}/versions",
        {"content": "return 2", "message": "two"},
        content_type="application/json",
    )
    versions = api.get(f"/api/scripts/{sid}/versions").json()["versions"]
    assert [v["number"] for v in versions] == [2, 1] and versions[0]["message"] == "two"
    assert api.get(f"/api/scripts/{sid}/versions/1").json()["content"] == "return 1"
    restored = api.post(f"/api/scripts/{sid}/versions/1/restore").json()
    assert restored["number"] == 3
    renamed = api.patch(
        f"/api/scripts/{sid}",
        {"name": "api-renamed", "tags": "x y"},
        content_type="application/json",
    ).json()
    assert renamed["name"] == "api-renamed" and renamed["tags"] == ["x", "y"]
    assert (
        api.patch(
            f"/api/scripts/{sid}", {"runtime": "luajit"}, content_type="application/json"
        ).json()["runtime"]
        == "luajit"
    )
    assert (
        api.patch(
            f"/api/scripts/{sid}", {"runtime": "python"}, content_type="application/json"
        ).status_code
        == 400
    )
    assert api.delete(f"/api/scripts/{sid}").json()["deleted"] is True
    assert api.get("/api/scripts/999999").status_code == 404
    bad = api.post("/api/scripts", b"not json", content_type="application/json")
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]


def test_check_endpoint_reports_syntax_errors_then_lint(client_for):
    viewer = client_for("viewer")
    syntax = viewer.post(
        "/api/check", {"source": "print(1\n"}, content_type="application/json"
    ).json()["problems"]
    assert syntax[0]["severity"] == "error" and syntax[0]["code"] == "syntax"
    lint = viewer.post(
        "/api/check", {"source": "local unused = io\n"}, content_type="application/json"
    ).json()["problems"]
    assert {p["code"] for p in lint} == {"sandbox", "unused-local"}


def test_openapi_schema_lists_every_route(client_for):
    from ide.api.routes import ROUTES, openapi_path

    schema = client_for("viewer").get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    for route in ROUTES:
        assert route.method.lower() in schema["paths"][openapi_path(route.path)]


def test_reference_page_lists_the_registry(client_for):
    from oktoscripts.bindings import all_bindings

    html = client_for("viewer").get("/reference/").content.decode()
    for b in all_bindings():
        assert f'id="fn-{b.name}"' in html


def test_per_script_limits_are_checked_and_go_with_each_run(client_for, users, script):
    author = client_for("author")
    saved = author.post(
        f"/scripts/{script.pk}/settings",
        {"wall_seconds": "30", "memory_bytes": "64", "instructions": "5"},
    )
    assert saved.status_code == 302
    script.refresh_from_db()
    assert script.limits == {
        "wall_seconds": 30.0,
        "memory_bytes": 64 * 1024 * 1024,
        "instructions": 5_000_000,
    }
    page = author.get(f"/scripts/{script.pk}/").content.decode()
    assert 'name="wall_seconds" value="30"' in page and 'name="memory_bytes" value="64"' in page
    bad = author.patch(
        f"/api/scripts/{script.pk}",
        {"limits": {"wall_seconds": -1}},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "limit" in bad.json()["error"].lower()
    unknown = author.patch(
        f"/api/scripts/{script.pk}", {"limits": {"cpu": 1}}, content_type="application/json"
    )
    assert unknown.status_code == 400
    cleared = author.patch(
        f"/api/scripts/{script.pk}", {"limits": {}}, content_type="application/json"
    ).json()
    assert cleared["limits"] == {}


def test_saving_over_a_newer_version_is_refused_unless_asked(client_for, users, script):
    scripts.save_version(users["admin"], script, "print('admin was here')\n")
    author = client_for("author")
    stale = author.post(
        f"/api/scripts/{script.pk}/versions",
        {"content": "print('mine')", "base_version": 1},
        content_type="application/json",
    )
    assert stale.status_code == 409
    assert stale.json()["error"] == "admin saved version 2 after your version 1"
    forced = author.post(
        f"/api/scripts/{script.pk}/versions",
        {"content": "print('mine')"},
        content_type="application/json",
    )
    assert forced.status_code == 201 and forced.json()["number"] == 3
