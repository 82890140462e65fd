"""The snippet gallery's scripts check clean against the platform's API."""

from __future__ import annotations

import pytest

from ide.snippets import SNIPPETS


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.title for s in SNIPPETS])
def test_every_snippet_checks_without_problems(client_for, snippet):
    response = client_for("author").post(
        "/api/check", {"source": snippet.code}, content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["problems"] == []


def test_the_editor_page_carries_the_gallery(client_for, users):
    from oktoscripts.scripts import editing

    script = editing.create_script(users["admin"], "s", "return 1\n")
    page = client_for("author").get(f"/scripts/{script.pk}/").content.decode()
    assert 'id="snippet-menu"' in page and "Onboard new devices" in page
