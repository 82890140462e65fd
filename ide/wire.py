"""A recorded device call as the console shows it expanded: its request as it
goes on the wire (CWMP: the SOAP envelope the ACS sends; USP: the Msg as
JSON) and the answer the script got.

Built from the run's recording (``oktoscripts/runs/gates.py``), which keeps
each request in a form independent of how the script spelled it and each
answer as the binding decoded it. So: a CWMP request is the envelope the ACS
builds from it, except for the ``cwmp:ID`` the session draws for each send
(not recorded); a CWMP answer is the CPE's response XML when the ACS kept it
(a fault), else the decoded answer; a USP answer is the decoded response.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from oktoscripts.cwmp import soap
from oktoscripts.usp import messages

# What stands for the cwmp:ID the ACS's session draws for each request it sends.
SESSION_ID = "chosen-by-the-session"


def render(recorded: dict[str, Any]) -> dict[str, Any]:
    """``{"request": {"format", "text"}, "answer": {"format", "text", "note"}}``."""
    if recorded.get("protocol") == "cwmp":
        return {"request": _cwmp_request(recorded["request"]), "answer": _cwmp_answer(recorded)}
    return {"request": _usp_request(recorded), "answer": _json(recorded.get("answer"), "decoded")}


def _json(value: Any, note: str = "") -> dict[str, str]:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return {"format": "json", "text": text, "note": note}


def _xml(raw: bytes | str) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
        tree = etree.fromstring(data, parser)
        return etree.tostring(tree, pretty_print=True, encoding="unicode")
    except etree.XMLSyntaxError:
        return data.decode("utf-8", "replace")


def _cwmp_request(request: dict[str, Any]) -> dict[str, str]:
    try:
        rpc = soap.RpcRequest.from_json(request)
        raw = soap.build_request(rpc, soap.DEFAULT_CWMP_NS, SESSION_ID)
    except (KeyError, TypeError, ValueError):
        return _json(request, "as recorded")
    return {"format": "xml", "text": _xml(raw), "note": "cwmp:ID: drawn by the session"}


def _cwmp_answer(recorded: dict[str, Any]) -> dict[str, str]:
    answer = recorded.get("answer") or {}
    raw = (answer.get("error") or {}).get("raw_response") if isinstance(answer, dict) else None
    if raw:
        return {"format": "xml", "text": _xml(raw), "note": "the CPE's response"}
    return _json(answer, "decoded by the ACS")


def _usp_request(recorded: dict[str, Any]) -> dict[str, str]:
    body = recorded.get("request") or {}
    header = dict(recorded.get("header") or {})
    if "msg_type" not in header:  # recorded before headers were kept
        kind = next(iter(body.get("request") or {}), "")
        if kind in messages.REQUESTS:
            header["msg_type"] = messages.MsgType.Name(messages.REQUESTS[kind][0])
    return _json({"header": header, "body": body})
