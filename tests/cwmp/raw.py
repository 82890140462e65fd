"""CWMP messages written by hand, for tests that talk to the ACS over raw
connections the way a broken or hostile client would."""

from __future__ import annotations

from oktoscripts.cwmp.httpauth import basic_header

XML = ("Content-Type", "text/xml")
NS = "urn:dslforum-org:cwmp-1-1"


def inform(serial, events=("1 BOOT",), cwmp_id="i1", oui="0000AA", product_class="P"):
    """An Inform; each event is a code or a (code, command key) pair."""
    structs = "".join(
        f"<EventStruct><EventCode>{code}</EventCode><CommandKey>{key}</CommandKey></EventStruct>"
        for code, key in ((e, "") if isinstance(e, str) else e for e in events)
    )
    return (
        f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:cwmp="{NS}"><soap:Header><cwmp:ID soap:mustUnderstand="1">{cwmp_id}'
        f"</cwmp:ID></soap:Header><soap:Body><cwmp:Inform><DeviceId>"
        f"<Manufacturer>Raw</Manufacturer><OUI>{oui}</OUI>"
        f"<ProductClass>{product_class}</ProductClass>"
        f"<SerialNumber>{serial}</SerialNumber></DeviceId><Event>{structs}</Event>"
        "<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2026-01-01T00:00:00Z</CurrentTime>"
        "<RetryCount>0</RetryCount><ParameterList/>"
        "</cwmp:Inform></soap:Body></soap:Envelope>"
    ).encode()


def rpc(name, body="", cwmp_id="c1"):
    return (
        f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:cwmp="{NS}"><soap:Header><cwmp:ID soap:mustUnderstand="1">{cwmp_id}'
        f"</cwmp:ID></soap:Header><soap:Body><cwmp:{name}>{body}</cwmp:{name}>"
        "</soap:Body></soap:Envelope>"
    ).encode()


def auth_of(cpe):
    """The Basic Authorization header of a simulated CPE's own credential."""
    return ("Authorization", basic_header(cpe.username, cpe.password))
