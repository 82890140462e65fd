"""The IDE's Lua API reference comes from the same source as docs/lua-api.md,
with every function's example and every message type, for signed-in users."""

from __future__ import annotations

from django.test import Client

from oktoscripts.bindings import all_bindings
from oktoscripts.bindings.reference import CWMP_MESSAGES, USP_MESSAGES


def test_the_reference_page_shows_each_function_with_its_example(client_for):
    html = client_for("viewer").get("/reference/").content.decode()
    for b in all_bindings():
        assert f'id="fn-{b.name}"' in html
    # Examples are shown as text: the payloads' markup is escaped.
    assert "&lt;cwmp:GetParameterValues&gt;" in html
    assert "listen_to_cwmp_event(&quot;1&quot;, &quot;*&quot;, function(ev)" in html
    for m in CWMP_MESSAGES:
        assert f'id="cwmp-{m["number"]}"' in html
    for m in USP_MESSAGES:
        assert f'id="usp-{m["kind"]}"' in html
    assert "<code>error_code</code>" in html and "<em>waits</em>" in html  # prose marks, rendered


def test_the_reference_is_for_signed_in_users_only(db):
    answer = Client().get("/reference/")
    assert answer.status_code == 302 and "/login/" in answer["Location"]


def test_the_editor_links_to_the_reference(client_for, users):
    from oktoscripts.scripts.editing import create_script

    script = create_script(users["author"], "inventory", "print(1)\n")
    html = client_for("author").get(f"/scripts/{script.pk}/").content.decode()
    assert 'id="api-reference-link"' in html and 'href="/reference/"' in html
