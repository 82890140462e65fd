"""Parsing untrusted XML: no DTD, no entities, no network, bounded size.

Everything the ACS parses comes from a CPE or a script, so the parser never
loads a DTD, never expands an entity (no "billion laughs", no external file
read) and never fetches anything. A document that declares a DTD at all is
refused before lxml sees it.
"""

from __future__ import annotations

import re

from lxml import etree

DEFAULT_MAX_BYTES = 1024 * 1024

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class UnsafeXml(ValueError):
    """The document is not well-formed, too large, or declares a DTD/entities."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_PARSER = _parser()


def parse(data: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """The root element of ``data``; UnsafeXml when it cannot be used."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > max_bytes:
        raise UnsafeXml(f"document of {len(data)} bytes exceeds the limit of {max_bytes}")
    if _DOCTYPE.search(data):
        raise UnsafeXml("document declares a DTD or entities")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"malformed XML: {exc}") from None
    if root is None:
        raise UnsafeXml("empty document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXml("document declares a DTD")
    return root


def local_name(el: etree._Element) -> str:
    """The element's tag without its namespace."""
    tag = el.tag
    if not isinstance(tag, str):  # entity reference or other special node
        return ""
    return tag.rpartition("}")[2]


def namespace(el: etree._Element) -> str:
    tag = el.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].partition("}")[0]
    return ""


def child(el: etree._Element, name: str) -> etree._Element | None:
    """The first child called ``name`` in any namespace or none (CPEs vary)."""
    found = el.find(name)  # the usual case, unqualified, is the fast one
    return found if found is not None else el.find("{*}" + name)


def children(el: etree._Element, name: str) -> list[etree._Element]:
    return el.findall(name) or el.findall("{*}" + name)


def text(
    el: etree._Element | None, name: str | None = None, default: str = "", strip: bool = True
) -> str:
    """The text of ``el`` (or of its child ``name``), ``default`` when absent."""
    if el is not None and name is not None:
        el = child(el, name)
    if el is None:
        return default
    if any(not isinstance(c.tag, str) for c in el):
        raise UnsafeXml("entity references are not allowed")
    value = (el.text or "") if len(el) == 0 else "".join(el.itertext())
    return value.strip() if strip else value


def int_text(el: etree._Element | None, name: str | None = None, default: int = 0) -> int:
    raw = text(el, name)
    try:
        return int(raw)
    except ValueError:
        return default
