"""Derive the editor's data-model file from the Broadband Forum's published
data model definitions (the "full" XML of TR-181 Device:2 and TR-098
InternetGatewayDevice:1).

    python tools/bbf_datamodel.py --git-dir /path/to/cwmp-data-models/.git \
        tr-181-2-17-0-cwmp-full.xml tr-098-1-8-0-full.xml \
        --commands-git-dir /path/to/usp-data-models/.git \
        --commands tr-181-2-16-0-usp-full.xml

(or plain XML file paths without --git-dir). Writes ide/data/datamodel.json:
for every object and parameter its path (``{i}`` for an instance number), its
type, its access (readOnly / readWrite) and the first sentence of its
description, plus the BBF licence text the XML carries, which must travel with
the derived data (also in ide/data/BBF-LICENSE.txt). ``--commands``: the USP
flavour of a model, whose commands (``Device.Reboot()``, type "command") and
their input arguments (``Device.IP.Diagnostics.IPPing().Host``) are added to
the model with the same root (the CWMP flavour has none). Run again to move
to a newer data model release.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "ide" / "data" / "datamodel.json"
DOC_MAX = 140
# <syntax> children that say something other than the value's type.
NOT_TYPES = {
    "list",
    "default",
    "units",
    "size",
    "range",
    "enumeration",
    "pattern",
    "instanceRef",
    "pathRef",
    "reference",
}


def read(name: str, git_dir: str | None) -> str:
    if git_dir is None:
        return Path(name).read_text(encoding="utf-8")
    return subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"HEAD:{name}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def licence(text: str) -> str:
    """The copyright and licence comment at the top of the XML."""
    match = re.search(r"<!--(.*?)-->", text, re.S)
    return "\n".join(line.strip() for line in match.group(1).strip().splitlines()) if match else ""


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def first_sentence(element: ET.Element) -> str:
    for child in element:
        if local(child.tag) == "description":
            text = " ".join((child.text or "").split())
            # Cross references ({{param|Name}}) keep their name; other markup goes.
            text = re.sub(r"\{\{\w+\|([^|}]*)[^}]*\}\}", r"\1", text)
            text = " ".join(re.sub(r"\{\{[^}]*\}\}", "", text).split())
            end = re.search(r"(?<!e\.g)(?<!i\.e)(?<!etc)\. ", text)
            sentence = text if end is None else text[: end.start() + 1]
            return sentence if len(sentence) <= DOC_MAX else sentence[: DOC_MAX - 1] + "…"
    return ""


def value_type(parameter: ET.Element) -> str:
    for child in parameter:
        if local(child.tag) != "syntax":
            continue
        is_list = any(local(c.tag) == "list" for c in child)
        for c in child:
            kind = local(c.tag)
            if kind == "dataType":
                kind = c.get("ref") or c.get("base") or "string"
            if kind not in NOT_TYPES:
                return f"list of {kind}" if is_list else kind
    return "string"


def entries(text: str) -> tuple[str, list[list[str]]]:
    """The model's name and its [path, type, access, doc] rows (objects typed
    "object", commands "command" followed by their input arguments)."""
    root = ET.fromstring(text)
    model = next(e for e in root.iter() if local(e.tag) == "model")
    rows = []
    for obj in model:
        if local(obj.tag) != "object":
            continue
        path = obj.get("name", "")
        rows.append([path, "object", obj.get("access", "readOnly"), first_sentence(obj)])
        for item in obj:
            if local(item.tag) == "parameter":
                rows.append(_parameter(path, item, item.get("access", "readOnly")))
            elif local(item.tag) == "command":
                command = path + item.get("name", "")
                rows.append([command, "command", "readOnly", first_sentence(item)])
                rows.extend(
                    _parameter(command + ".", parameter, "readWrite")  # an input is given
                    for section in item
                    if local(section.tag) == "input"
                    for parameter in section
                    if local(parameter.tag) == "parameter"
                )
    return model.get("name", ""), rows


def _parameter(path: str, parameter: ET.Element, access: str) -> list[str]:
    return [
        path + parameter.get("name", ""),
        value_type(parameter),
        access,
        first_sentence(parameter),
    ]


def commands(text: str) -> list[list[str]]:
    """The command rows (and their inputs) of a model."""
    _, rows = entries(text)
    return [r for r in rows if r[1] == "command" or "()." in r[0]]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--git-dir", help="read the files from this git directory's HEAD")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--commands", action="append", default=[], help="a USP full XML")
    parser.add_argument("--commands-git-dir", help="read --commands files from this git HEAD")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    models, licences = [], []
    for name in args.files:
        text = read(name, args.git_dir)
        model, rows = entries(text)
        models.append({"model": model, "file": name, "paths": rows})
        notice = licence(text)
        if notice and notice not in licences:
            licences.append(notice)
        print(f"{name}: {model}, {len(rows)} paths")
    for name in args.commands:
        text = read(name, args.commands_git_dir)
        found = commands(text)
        root = found[0][0].split(".", 1)[0] if found else ""
        model = next(m for m in models if m["paths"] and m["paths"][0][0].startswith(root + "."))
        model["paths"].extend(found)
        model["commands_file"] = name
        notice = licence(text)
        if notice and notice not in licences:
            licences.append(notice)
        print(f"{name}: {len(found)} commands and inputs added to {model['model']}")
    out = {
        "source": "Broadband Forum data models, https://github.com/BroadbandForum",
        "licence": licences,
        "models": models,
    }
    Path(args.out).write_text(
        json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    notice = Path(args.out).with_name("BBF-LICENSE.txt")
    notice.write_text(
        "ide/data/datamodel.json is derived from these Broadband Forum data "
        "model files:\n"
        + "".join(f"  {m['file']} ({m['model']})\n" for m in models)
        + "".join(
            f"  {m['commands_file']} (its commands, added to {m['model']})\n"
            for m in models
            if "commands_file" in m
        )
        + "\nTheir copyright and licence:\n\n"
        + "\n\n".join(licences)
        + "\n",
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
