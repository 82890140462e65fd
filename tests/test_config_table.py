"""One typed configuration table (oktoscripts/config.py VARIABLES): every
environment variable is read there only, and the README documents exactly
the variables of the table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from oktoscripts import config

ROOT = Path(__file__).resolve().parents[1]
HEADER = "| variable | default | meaning |"


def _names_in_cell(cell: str) -> list[str]:
    """`A_B_C` / `_D` names A_B_C and A_B_D (the shorthand replaces as many
    trailing words as it has); a wildcard (`OKTOSCRIPTS_OIDC_*`) points to
    another table and names nothing."""
    names: list[str] = []
    for token in re.findall(r"`([^`]+)`", cell):
        if "*" in token:
            continue
        if token.startswith("_") and names:
            words = token.strip("_").split("_")
            stem = names[0].split("_")[: -len(words)]
            names.append("_".join([*stem, *words]))
        else:
            names.append(token)
    return names


def readme_variables() -> dict[str, int]:
    """Every variable named in the first column of the README's configuration
    tables, with the line it is on."""
    found: dict[str, int] = {}
    in_table = False
    for number, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1):
        if line.strip() == HEADER:
            in_table = True
            continue
        if in_table and not line.startswith("|"):
            in_table = False
        if in_table and not line.startswith("|---"):
            for name in _names_in_cell(line.split("|")[1]):
                found.setdefault(name, number)
    return found


def test_the_shorthand_of_the_readme_tables():
    assert _names_in_cell(" `OKTOSCRIPTS_OIDC_CLIENT_ID` / `_CLIENT_SECRET` ") == [
        "OKTOSCRIPTS_OIDC_CLIENT_ID",
        "OKTOSCRIPTS_OIDC_CLIENT_SECRET",
    ]
    assert _names_in_cell(" `OKTOSCRIPTS_OIDC_*`, `OKTOSCRIPTS_LDAP_*` ") == []


def test_every_variable_is_documented_in_the_readme():
    missing = sorted(set(config.VARIABLES) - set(readme_variables()))
    assert missing == [], "add a row to a README configuration table for each"


def test_no_readme_row_names_a_variable_the_platform_does_not_read():
    stale = {
        name: line for name, line in readme_variables().items() if name not in config.VARIABLES
    }
    assert stale == {}, "README rows (name: line) for variables not in oktoscripts/config.py"


def _environment_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and ast.unparse(node) in (
            "os.environ",
            "os.getenv",
            "os.environ._data",
        ):
            reads.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return reads


def test_only_the_configuration_module_reads_the_environment():
    files = [*ROOT.glob("oktoscripts/**/*.py"), *ROOT.glob("ide/**/*.py")]
    reads = [
        read
        for path in files
        if path.name != "config.py" or path.parent.name != "oktoscripts"
        for read in _environment_reads(path)
    ]
    # asgi.py names the settings module for Django (a write, no setting of ours).
    assert reads == ["oktoscripts/asgi.py:7"]


def test_an_undeclared_variable_cannot_be_read():
    with pytest.raises(config.ConfigError, match="OKTOSCRIPTS_NO_SUCH_THING: not a setting"):
        config.text("OKTOSCRIPTS_NO_SUCH_THING")


def test_values_are_typed_with_their_defaults(monkeypatch):
    monkeypatch.delenv("OKTOSCRIPTS_USP_WS_PORT", raising=False)
    assert config.value("OKTOSCRIPTS_USP_WS_PORT") == 8081
    monkeypatch.setenv("OKTOSCRIPTS_USP_WS_PORT", " 9000 ")
    assert config.value("OKTOSCRIPTS_USP_WS_PORT") == 9000
    monkeypatch.setenv("OKTOSCRIPTS_USP_WS_PORT", "lots")
    with pytest.raises(config.ConfigError, match="OKTOSCRIPTS_USP_WS_PORT: expected an integer"):
        config.value("OKTOSCRIPTS_USP_WS_PORT")
    monkeypatch.setenv("OKTOSCRIPTS_USP_WS_TLS", "off")
    assert config.value("OKTOSCRIPTS_USP_WS_TLS") is False
    monkeypatch.setenv("NATS_URL", "http://x:1")
    with pytest.raises(config.ConfigError, match="NATS_URL: expected a URL starting with nats://"):
        config.value("NATS_URL")


def test_the_mongo_database_name_is_a_setting(monkeypatch):
    monkeypatch.setenv("OKTOSCRIPTS_MONGO_DB", "other")
    assert config.value("OKTOSCRIPTS_MONGO_DB") == "other"
    monkeypatch.delenv("OKTOSCRIPTS_MONGO_DB")
    assert config.value("OKTOSCRIPTS_MONGO_DB") == "oktoscripts"
