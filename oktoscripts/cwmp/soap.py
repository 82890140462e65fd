"""CWMP SOAP messages: reading what CPEs send and writing what the ACS sends.

Reading is lenient (CPE firmware varies: odd prefixes, missing Header, wrong
array counts, elements in the wrong namespace); writing is strict and uses the
literal prefixes ``soap-env``, ``soap-enc``, ``xsd``, ``xsi`` and ``cwmp``
because some CPEs look for those exact prefixes. See docs/protocols.md.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from lxml import etree

from oktoscripts.cwmp import day2
from oktoscripts.cwmp.xmlsafe import (
    DEFAULT_MAX_BYTES,
    UnsafeXml,
    child,
    children,
    int_text,
    local_name,
    namespace,
    parse,
    text,
)

NS_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
NS_XSD = "http://www.w3.org/2001/XMLSchema"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
CWMP_NAMESPACES = tuple(f"urn:dslforum-org:cwmp-1-{minor}" for minor in range(5))
DEFAULT_CWMP_NS = CWMP_NAMESPACES[0]


class SoapError(ValueError):
    """A message the ACS cannot use: not XML, not a SOAP envelope, or missing a
    required element. ``str()`` says what was wrong, for the log."""


# ---------------------------------------------------------------------------
# Reading


@dataclass
class Envelope:
    """A parsed SOAP envelope: the CWMP namespace the CPE speaks, the cwmp:ID
    of its Header (None when there is none) and the first Body element."""

    cwmp_ns: str
    cwmp_id: str | None
    rpc: str  # local name of the Body's first element ("Fault" for a SOAP Fault)
    element: etree._Element
    raw: bytes


def parse_envelope(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Envelope:
    try:
        root = parse(data, max_bytes)
    except UnsafeXml as exc:
        raise SoapError(str(exc)) from None
    if local_name(root) != "Envelope":
        raise SoapError(f"root element is <{local_name(root)}>, not a SOAP Envelope")
    body = child(root, "Body")
    if body is None:
        raise SoapError("SOAP Envelope has no Body")
    rpc_element = next((c for c in body if isinstance(c.tag, str)), None)
    if rpc_element is None:
        raise SoapError("SOAP Body is empty")
    header = child(root, "Header")
    id_element = child(header, "ID") if header is not None else None
    cwmp_id = text(id_element) if id_element is not None else None
    return Envelope(
        cwmp_ns=_cwmp_namespace(rpc_element, id_element, root),
        cwmp_id=cwmp_id,
        rpc=local_name(rpc_element),
        element=rpc_element,
        raw=data if isinstance(data, bytes) else data.encode(),
    )


def _cwmp_namespace(
    rpc: etree._Element, id_element: etree._Element | None, root: etree._Element
) -> str:
    """The CWMP version the CPE speaks: of its RPC element, else of its ID header,
    else any cwmp namespace it declares, else 1.0."""
    for el in (rpc, id_element):
        if el is not None and namespace(el) in CWMP_NAMESPACES:
            return namespace(el)
    for uri in root.nsmap.values():
        if uri in CWMP_NAMESPACES:
            return uri
    return DEFAULT_CWMP_NS


@dataclass(frozen=True)
class DeviceId:
    manufacturer: str
    oui: str
    product_class: str
    serial_number: str


@dataclass(frozen=True)
class EventStruct:
    code: str  # "1 BOOT", "M Reboot"
    command_key: str = ""

    @property
    def number(self) -> str:
        """ "1" for "1 BOOT"; M-codes ("M Reboot") keep their whole text."""
        head, _, _ = self.code.partition(" ")
        return head if head.isdigit() else self.code

    @property
    def name(self) -> str:
        head, _, rest = self.code.partition(" ")
        return rest if head.isdigit() else self.code


@dataclass
class Inform:
    device_id: DeviceId
    events: list[EventStruct]
    max_envelopes: int
    current_time: str
    retry_count: int
    parameters: dict[str, str]


def parse_inform(el: etree._Element) -> Inform:
    device = child(el, "DeviceId")
    if device is None:
        raise SoapError("Inform has no DeviceId")
    device_id = DeviceId(
        manufacturer=text(device, "Manufacturer"),
        oui=text(device, "OUI"),
        product_class=text(device, "ProductClass"),
        serial_number=text(device, "SerialNumber"),
    )
    if not device_id.serial_number:
        raise SoapError("Inform DeviceId has no SerialNumber")
    events = []
    event_list = child(el, "Event")
    # Array counts in soap-enc:arrayType are often wrong: only the elements count.
    for ev in children(event_list, "EventStruct") if event_list is not None else []:
        code = text(ev, "EventCode")
        if code:
            events.append(EventStruct(code, text(ev, "CommandKey")))
    return Inform(
        device_id=device_id,
        events=events,
        max_envelopes=int_text(el, "MaxEnvelopes", 1),
        current_time=text(el, "CurrentTime"),
        retry_count=int_text(el, "RetryCount", 0),
        parameters=_parameter_values(child(el, "ParameterList")),
    )


class ParameterValues(dict):
    """{name: value} of a GetParameterValuesResponse, with each value's xsd type
    in ``types`` (what a device twin must answer with)."""

    types: dict[str, str]


class ParameterNames(list):
    """The names of a GetParameterNamesResponse, with their Writable flags."""

    writable: dict[str, bool]


def _parameter_values(plist: etree._Element | None) -> ParameterValues:
    values = ParameterValues()
    values.types = {}
    if plist is None:
        return values
    for pv in children(plist, "ParameterValueStruct"):
        name_el, value_el = _name_and_value(pv)
        name = _leaf_text(name_el).strip()
        if name:
            values[name] = _leaf_text(value_el)
            values.types[name] = _xsd_type(value_el) if value_el is not None else "string"
    return values


def _leaf_text(el: etree._Element | None) -> str:
    """``text(el, strip=False)``, without its checks for an element with no
    children (the usual Name and Value: nothing to check)."""
    if el is not None and len(el) == 0:
        return el.text or ""
    return text(el, strip=False)


def _name_and_value(pv: etree._Element) -> tuple[etree._Element | None, etree._Element | None]:
    """``child(pv, "Name")`` and ``child(pv, "Value")`` in one pass over the
    struct's children (a device's answer holds thousands of structs): the first
    unqualified one, else the first in any namespace."""
    found: dict[str, etree._Element] = {}
    qualified: dict[str, etree._Element] = {}
    for c in pv:
        tag = c.tag
        if not isinstance(tag, str):
            continue
        if tag in ("Name", "Value"):
            found.setdefault(tag, c)
        elif tag.startswith("{"):
            local = tag.rpartition("}")[2]
            if local in ("Name", "Value"):
                qualified.setdefault(local, c)
    return (
        found.get("Name", qualified.get("Name")),
        found.get("Value", qualified.get("Value")),
    )


@dataclass
class TransferComplete:
    command_key: str
    fault_code: int
    fault_string: str
    start_time: str
    complete_time: str


def parse_transfer_complete(el: etree._Element) -> TransferComplete:
    fault = child(el, "FaultStruct")
    return TransferComplete(
        command_key=text(el, "CommandKey"),
        fault_code=int_text(fault, "FaultCode", 0) if fault is not None else 0,
        fault_string=text(fault, "FaultString") if fault is not None else "",
        start_time=text(el, "StartTime"),
        complete_time=text(el, "CompleteTime"),
    )


@dataclass
class ParameterFault:
    parameter_name: str
    fault_code: str
    fault_string: str


@dataclass
class CwmpFault:
    """A SOAP Fault from the CPE, with the CWMP fault detail when present."""

    fault_code: str
    fault_string: str
    parameter_faults: list[ParameterFault] = field(default_factory=list)


def parse_fault(el: etree._Element) -> CwmpFault:
    """A SOAP Fault: the CWMP detail (cwmp:Fault/FaultCode) wins over the SOAP
    faultcode ("Client"/"Server"), which says little."""
    detail = child(el, "detail")
    if detail is None:
        detail = child(el, "Detail")
    cwmp_fault = child(detail, "Fault") if detail is not None else None
    if cwmp_fault is None:
        return CwmpFault(
            fault_code=text(el, "faultcode") or "500",
            fault_string=text(el, "faultstring") or "SOAP Fault without detail",
        )
    return CwmpFault(
        fault_code=text(cwmp_fault, "FaultCode") or text(el, "faultcode") or "500",
        fault_string=text(cwmp_fault, "FaultString") or text(el, "faultstring"),
        parameter_faults=[
            ParameterFault(
                parameter_name=text(pf, "ParameterName"),
                fault_code=text(pf, "FaultCode"),
                fault_string=text(pf, "FaultString"),
            )
            for pf in children(cwmp_fault, "SetParameterValuesFault")
        ],
    )


@dataclass
class AddObjectResult:
    instance_number: int
    status: int


def parse_response(envelope: Envelope) -> object:
    """The result of one of the five RPC responses (dict, int status,
    AddObjectResult, list of names) or a CwmpFault."""
    el, rpc = envelope.element, envelope.rpc
    if rpc == "Fault":
        return parse_fault(el)
    if rpc == "GetParameterValuesResponse":
        return _parameter_values(child(el, "ParameterList"))
    if rpc in ("SetParameterValuesResponse", "DeleteObjectResponse"):
        return int_text(el, "Status", 0)
    if rpc == "AddObjectResponse":
        return AddObjectResult(int_text(el, "InstanceNumber", 0), int_text(el, "Status", 0))
    if rpc == "GetParameterNamesResponse":
        plist = child(el, "ParameterList")
        names = ParameterNames()
        names.writable = {}
        for info in children(plist, "ParameterInfoStruct") if plist is not None else []:
            name = text(info, "Name")
            if name:
                names.append(name)
                names.writable[name] = text(info, "Writable").lower() in ("1", "true")
        return names
    if rpc in day2.RESPONSES:
        return day2.parse_response(rpc, el)
    raise SoapError(f"unexpected response {rpc}")


RESPONSES = (
    frozenset(
        {
            "GetParameterValuesResponse",
            "SetParameterValuesResponse",
            "AddObjectResponse",
            "DeleteObjectResponse",
            "GetParameterNamesResponse",
            "Fault",
        }
    )
    | day2.RESPONSES
)

# ---------------------------------------------------------------------------
# Writing

_ENVELOPE_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<soap-env:Envelope xmlns:soap-env="{NS_SOAP_ENV}" xmlns:soap-enc="{NS_SOAP_ENC}"'
    f' xmlns:xsd="{NS_XSD}" xmlns:xsi="{NS_XSI}" xmlns:cwmp="{{ns}}">'
    '<soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">{id}</cwmp:ID></soap-env:Header>'
    "<soap-env:Body>"
)
_ENVELOPE_CLOSE = "</soap-env:Body></soap-env:Envelope>"


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def envelope(cwmp_ns: str, cwmp_id: str, body: str) -> bytes:
    """A whole SOAP envelope around ``body`` (the RPC element's XML)."""
    head = _ENVELOPE_OPEN.replace("{ns}", cwmp_ns).replace("{id}", escape(cwmp_id))
    return (head + body + _ENVELOPE_CLOSE).encode("utf-8")


def inform_response(cwmp_ns: str, cwmp_id: str) -> bytes:
    return envelope(
        cwmp_ns,
        cwmp_id,
        "<cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse>",
    )


def transfer_complete_response(cwmp_ns: str, cwmp_id: str) -> bytes:
    return envelope(cwmp_ns, cwmp_id, "<cwmp:TransferCompleteResponse/>")


ACS_METHODS = ("Inform", "GetRPCMethods", "TransferComplete")


def get_rpc_methods_response(cwmp_ns: str, cwmp_id: str) -> bytes:
    names = "".join(f"<string>{m}</string>" for m in ACS_METHODS)
    return envelope(
        cwmp_ns,
        cwmp_id,
        "<cwmp:GetRPCMethodsResponse>"
        f'<MethodList soap-enc:arrayType="xsd:string[{len(ACS_METHODS)}]">{names}</MethodList>'
        "</cwmp:GetRPCMethodsResponse>",
    )


def soap_fault(cwmp_ns: str, cwmp_id: str, code: int, message: str) -> bytes:
    """A SOAP Fault from the ACS (8000 method not supported, 8002 internal error,
    8003 invalid arguments...)."""
    return envelope(
        cwmp_ns,
        cwmp_id,
        "<soap-env:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>"
        f"<detail><cwmp:Fault><FaultCode>{code}</FaultCode>"
        f"<FaultString>{escape(message)}</FaultString></cwmp:Fault></detail></soap-env:Fault>",
    )


# ---------------------------------------------------------------------------
# Requests the ACS sends on behalf of scripts

MESSAGE_TYPES = {
    0: "GetParameterValues",
    1: "SetParameterValues",
    2: "AddObject",
    3: "DeleteObject",
    4: "GetParameterNames",
}
# Beyond the Oktopus API's five: the day-2 RPCs (day2.py), message types 5 and up.
ALL_MESSAGE_TYPES = {**MESSAGE_TYPES, **day2.EXTENSION_TYPES}
RESPONSE_OF = {name: name + "Response" for name in ALL_MESSAGE_TYPES.values()}

XSD_TYPES = frozenset(
    {
        "string",
        "int",
        "unsignedInt",
        "boolean",
        "dateTime",
        "base64",
        "long",
        "unsignedLong",
        "hexBinary",
        "decimal",
        "double",
        "float",
        "short",
        "byte",
        "unsignedShort",
        "unsignedByte",
        "integer",
        "anySimpleType",
    }
)


@dataclass
class RpcRequest:
    """A request in a form independent of how the script spelled its XML."""

    method: str
    names: list[str] = field(default_factory=list)  # GetParameterValues
    values: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, xsd type
    object_name: str = ""  # AddObject, DeleteObject
    path: str = ""  # GetParameterNames
    next_level: bool = False
    parameter_key: str = ""
    args: dict[str, str] = field(default_factory=dict)  # day-2 RPCs: scalar arguments
    items: list = field(default_factory=list)  # day-2 RPCs: names or attribute changes
    # The answer also carries each value's xsd type (GetParameterValues) or each
    # name's Writable flag (GetParameterNames): what a device twin is made from.
    details: bool = False

    def to_json(self) -> dict:
        out = {
            "method": self.method,
            "names": self.names,
            "values": [list(v) for v in self.values],
            "object_name": self.object_name,
            "path": self.path,
            "next_level": self.next_level,
            "parameter_key": self.parameter_key,
        }
        if self.args or self.items:  # day-2 RPCs only: other requests' call ids stay
            out["args"], out["items"] = self.args, self.items
        if self.details:  # only then: the call ids of other requests stay as they were
            out["details"] = True
        return out

    @classmethod
    def from_json(cls, data: dict) -> RpcRequest:
        return cls(
            method=data["method"],
            names=list(data.get("names", [])),
            values=[tuple(v) for v in data.get("values", [])],
            object_name=data.get("object_name", ""),
            path=data.get("path", ""),
            next_level=bool(data.get("next_level")),
            parameter_key=data.get("parameter_key", ""),
            args=dict(data.get("args") or {}),
            items=list(data.get("items") or []),
            details=bool(data.get("details")),
        )


_WRAP_PREFIXES = (
    f'xmlns:soap-env="{NS_SOAP_ENV}" xmlns:soapenv="{NS_SOAP_ENV}" '
    f'xmlns:soap="{NS_SOAP_ENV}" xmlns:SOAP-ENV="{NS_SOAP_ENV}" '
    f'xmlns:soap-enc="{NS_SOAP_ENC}" xmlns:soapenc="{NS_SOAP_ENC}" '
    f'xmlns:SOAP-ENC="{NS_SOAP_ENC}" xmlns:xsd="{NS_XSD}" xmlns:xsi="{NS_XSI}" '
    f'xmlns:cwmp="{DEFAULT_CWMP_NS}"'
)


def request_from_payload(xml_payload: str, message_type: int) -> RpcRequest:
    """Read a script's payload (a whole envelope or just the RPC element, with or
    without namespace declarations) into an RpcRequest of ``message_type``.
    SoapError says what is wrong with it."""
    method = ALL_MESSAGE_TYPES[message_type]
    payload = xml_payload.strip()
    if payload.startswith("<?xml"):
        payload = payload.partition("?>")[2]
    # Scripts often write <cwmp:GetParameterValues> without declaring cwmp:
    # a wrapper declares the usual prefixes; the payload's own declarations win.
    try:
        wrapper = parse(f"<wrapper {_WRAP_PREFIXES}>{payload}</wrapper>")
    except UnsafeXml as exc:
        raise SoapError(str(exc).replace("wrapper", "payload")) from None
    elements = [c for c in wrapper if isinstance(c.tag, str)]
    if len(elements) != 1:
        raise SoapError("expected one XML element (an Envelope or the RPC element)")
    el = elements[0]
    if local_name(el) == "Envelope":
        body = child(el, "Body")
        el = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if el is None:
            raise SoapError("the envelope's Body is empty")
    if local_name(el) != method:
        raise SoapError(
            f"message type {message_type} is {method}, but the payload is <{local_name(el)}>"
        )
    request = RpcRequest(method=method, parameter_key=text(el, "ParameterKey"))
    if method in day2.ARGS:
        try:
            request.args, request.items = day2.read(el, method)
        except day2.PayloadError as exc:
            raise SoapError(str(exc)) from None
    elif method == "GetParameterValues":
        request.names = _string_array(el, "ParameterNames")
    elif method == "SetParameterValues":
        request.values = _set_values(el)
    elif method in ("AddObject", "DeleteObject"):
        request.object_name = text(el, "ObjectName")
        if not request.object_name:
            raise SoapError(f"{method} needs an ObjectName")
    else:
        request.path = text(el, "ParameterPath")
        request.next_level = text(el, "NextLevel").lower() in ("1", "true")
    return request


def _string_array(el: etree._Element, name: str) -> list[str]:
    array = child(el, name)
    if array is None:
        raise SoapError(f"{local_name(el)} needs {name}")
    return [text(s) for s in array if isinstance(s.tag, str) and text(s)]


def _set_values(el: etree._Element) -> list[tuple[str, str, str]]:
    plist = child(el, "ParameterList")
    if plist is None:
        raise SoapError("SetParameterValues needs a ParameterList")
    values = []
    for pv in children(plist, "ParameterValueStruct"):
        name = text(pv, "Name")
        value_el = child(pv, "Value")
        if not name or value_el is None:
            raise SoapError("each ParameterValueStruct needs a Name and a Value")
        values.append((name, text(value_el, strip=False), _xsd_type(value_el)))
    if not values:
        raise SoapError("SetParameterValues has no ParameterValueStruct")
    return values


def _xsd_type(value_el: etree._Element) -> str:
    """The value's xsd type, whatever prefix the script used; string by default
    (CPEs need xsi:type on every value)."""
    raw = value_el.get(f"{{{NS_XSI}}}type") or ""
    local = raw.rpartition(":")[2]
    return local if local in XSD_TYPES else "string"


def build_request(request: RpcRequest, cwmp_ns: str, cwmp_id: str) -> bytes:
    return envelope(cwmp_ns, cwmp_id, _request_body(request))


def _request_body(r: RpcRequest) -> str:
    if r.method == "GetParameterValues":
        names = "".join(f"<string>{escape(n)}</string>" for n in r.names)
        return (
            f"<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType="
            f'"xsd:string[{len(r.names)}]">{names}</ParameterNames>'
            "</cwmp:GetParameterValues>"
        )
    if r.method == "SetParameterValues":
        structs = "".join(
            f"<ParameterValueStruct><Name>{escape(n)}</Name>"
            f'<Value xsi:type="xsd:{t}">{escape(v)}</Value></ParameterValueStruct>'
            for n, v, t in r.values
        )
        return (
            f"<cwmp:SetParameterValues><ParameterList soap-enc:arrayType="
            f'"cwmp:ParameterValueStruct[{len(r.values)}]">{structs}</ParameterList>'
            f"<ParameterKey>{escape(r.parameter_key)}</ParameterKey>"
            "</cwmp:SetParameterValues>"
        )
    if r.method in ("AddObject", "DeleteObject"):
        return (
            f"<cwmp:{r.method}><ObjectName>{escape(r.object_name)}</ObjectName>"
            f"<ParameterKey>{escape(r.parameter_key)}</ParameterKey></cwmp:{r.method}>"
        )
    if r.method == "GetParameterNames":
        return (
            f"<cwmp:GetParameterNames><ParameterPath>{escape(r.path)}</ParameterPath>"
            f"<NextLevel>{'true' if r.next_level else 'false'}</NextLevel>"
            "</cwmp:GetParameterNames>"
        )
    if r.method in day2.ARGS:
        return day2.body(r.method, r.args, r.items)
    raise ValueError(f"unknown method {r.method}")
