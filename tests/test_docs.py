"""docs/ belongs to the repository: the Lua API reference is generated from the
binding declarations (and cannot go stale), every function and message type
has an example that works, no file points outside the repository, and the
README's layout section names what the tree holds."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from oktoscripts.bindings import all_bindings, reference
from oktoscripts.bindings.reference import CWMP_MESSAGES, EXAMPLES, USP_MESSAGES

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_api_reference_is_what_the_generator_writes():
    committed = (ROOT / "docs" / "lua-api.md").read_text()
    assert committed == reference.markdown(), (
        "docs/lua-api.md is stale: run .venv/bin/python -m oktoscripts.bindings.reference"
    )


def test_the_generator_check_fails_on_a_stale_file(tmp_path, monkeypatch):
    stale = tmp_path / "lua-api.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(reference, "DOC_PATH", stale)
    assert reference.main(["--check"]) == 1
    assert reference.main([]) == 0 and reference.main(["--check"]) == 0


def test_every_function_has_an_example_and_every_example_a_function():
    names = {b.name for b in all_bindings()}
    assert sorted(names - set(EXAMPLES)) == []
    assert sorted(set(EXAMPLES) - names) == []


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_compiles_and_calls_only_what_exists(name):
    from oktoscripts.lua.lint import lint
    from oktoscripts.lua.syntax import check_syntax

    source = EXAMPLES[name]
    assert check_syntax(source) == []
    assert [p for p in lint(source, all_bindings()) if p["severity"] == "error"] == []
    assert re.search(rf"\b{name}\(", source), "the example calls its function"


def test_every_cwmp_message_type_has_an_example_of_that_type():
    from oktoscripts.cwmp.soap import ALL_MESSAGE_TYPES, request_from_payload

    assert [int(m["number"]) for m in CWMP_MESSAGES] == sorted(ALL_MESSAGE_TYPES)
    for m in CWMP_MESSAGES:
        request = request_from_payload(m["payload"], int(m["number"]))
        assert request.method == ALL_MESSAGE_TYPES[int(m["number"])] == m["name"]


def test_every_usp_request_a_script_may_send_has_an_example_of_that_request():
    from oktoscripts.usp.messages import SCRIPT_REQUESTS, parse_script_payload, request_kind

    assert sorted(m["kind"] for m in USP_MESSAGES) == sorted(SCRIPT_REQUESTS)
    for m in USP_MESSAGES:
        assert request_kind(parse_script_payload(m["payload"])) == m["kind"]


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_no_file_refers_outside_the_repository():
    # Spelled in pieces so that this file does not match itself.
    outside = re.compile(
        "|".join(
            re.escape(p)
            for p in ("../" + "shared", "LUA" + "_API.md", "DESIGN" + ".md", "CWMP" + "_NOTES.md")
        )
    )
    found = []
    for path in _tracked_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        found += [
            f"{path.relative_to(ROOT)}:{n}"
            for n, line in enumerate(text.splitlines(), 1)
            if outside.search(line)
        ]
    assert found == []


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def test_the_readme_layout_names_every_part_of_the_tree():
    block = _layout_block()
    words = set(re.findall(r"[\w.]+", block))
    parts = [
        p
        for p in (ROOT / "oktoscripts").iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name not in ("__init__.py", "apps.py"))
    ]
    missing = sorted(p.name for p in parts if p.name not in words and p.stem not in words)
    assert missing == []
    top = [
        p.name
        for p in ROOT.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in ("var", "oktoscripts.egg-info", "__pycache__")
    ]
    assert sorted(name for name in top if name not in words) == []


def test_the_readme_layout_names_nothing_that_is_gone():
    block = _layout_block()
    named = re.findall(r"^\s+(\w+)/", block, flags=re.M) + re.findall(r"(\w+)\.py", block)

    def exists(name: str) -> bool:
        return any(
            (ROOT / f"{name}.py").exists()
            or (ROOT / name).exists()
            or any(package.glob(f"**/{name}.py"))
            or any(package.glob(f"**/{name}/"))
            for package in (ROOT / "oktoscripts", ROOT / "ide", ROOT / "tools", ROOT / "bench")
        )

    assert [name for name in named if not exists(name)] == []
