"""The SOAP layer against XML shaped like what real CPEs and scripts send."""

import pytest
from lxml import etree

from oktoscripts.cwmp import soap
from oktoscripts.cwmp.soap import SoapError

# A TR-098 Inform with the prefixes one vendor uses, a wrong array count and
# cwmp-1-2.
INFORM_ODD_PREFIXES = b"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"
  xmlns:xsd="http://www.w3.org/2001/XMLSchema"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:ns1="urn:dslforum-org:cwmp-1-2">
 <SOAP-ENV:Header><ns1:ID SOAP-ENV:mustUnderstand="1">42abc</ns1:ID></SOAP-ENV:Header>
 <SOAP-ENV:Body>
  <ns1:Inform>
   <DeviceId><Manufacturer>Acme</Manufacturer><OUI>00D09E</OUI>
     <ProductClass>IGD</ProductClass><SerialNumber>SN-0001</SerialNumber></DeviceId>
   <Event SOAP-ENC:arrayType="ns1:EventStruct[1]">
     <EventStruct><EventCode>0 BOOTSTRAP</EventCode><CommandKey></CommandKey></EventStruct>
     <EventStruct><EventCode>1 BOOT</EventCode><CommandKey/></EventStruct>
     <EventStruct><EventCode>M Reboot</EventCode><CommandKey>ck-7</CommandKey></EventStruct>
   </Event>
   <MaxEnvelopes>1</MaxEnvelopes>
   <CurrentTime>2026-01-01T10:00:00Z</CurrentTime>
   <RetryCount>0</RetryCount>
   <ParameterList SOAP-ENC:arrayType="ns1:ParameterValueStruct[7]">
    <ParameterValueStruct><Name>InternetGatewayDevice.DeviceInfo.SoftwareVersion</Name>
      <Value xsi:type="xsd:string">1.2.3</Value></ParameterValueStruct>
    <ParameterValueStruct><Name>InternetGatewayDevice.ManagementServer.ConnectionRequestURL</Name>
      <Value xsi:type="xsd:string">http://127.0.0.1:30005/cr</Value></ParameterValueStruct>
   </ParameterList>
  </ns1:Inform>
 </SOAP-ENV:Body>
</SOAP-ENV:Envelope>"""

# No Header at all, default-namespace cwmp elements, cwmp-1-0.
INFORM_NO_HEADER = b"""<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/">
<Body><Inform xmlns="urn:dslforum-org:cwmp-1-0"><DeviceId xmlns="">
<Manufacturer>X</Manufacturer><OUI>1</OUI><ProductClass>P</ProductClass>
<SerialNumber>S2</SerialNumber></DeviceId><Event xmlns=""/><MaxEnvelopes xmlns="">1</MaxEnvelopes>
<CurrentTime xmlns="">0001-01-01T00:00:00Z</CurrentTime><RetryCount xmlns="">3</RetryCount>
</Inform></Body></Envelope>"""


def test_inform_with_odd_prefixes_and_wrong_counts():
    env = soap.parse_envelope(INFORM_ODD_PREFIXES)
    assert env.rpc == "Inform"
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-2"
    assert env.cwmp_id == "42abc"
    inform = soap.parse_inform(env.element)
    assert inform.device_id == soap.DeviceId("Acme", "00D09E", "IGD", "SN-0001")
    assert [e.code for e in inform.events] == ["0 BOOTSTRAP", "1 BOOT", "M Reboot"]
    assert [(e.number, e.name) for e in inform.events] == [
        ("0", "BOOTSTRAP"),
        ("1", "BOOT"),
        ("M Reboot", "M Reboot"),
    ]
    assert inform.events[2].command_key == "ck-7"
    assert inform.parameters["InternetGatewayDevice.DeviceInfo.SoftwareVersion"] == "1.2.3"
    assert len(inform.parameters) == 2
    assert inform.current_time == "2026-01-01T10:00:00Z"


def test_inform_without_header():
    env = soap.parse_envelope(INFORM_NO_HEADER)
    assert env.cwmp_id is None
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-0"
    inform = soap.parse_inform(env.element)
    assert inform.device_id.serial_number == "S2"
    assert inform.events == [] and inform.retry_count == 3


def test_inform_response_echoes_id_in_cpe_namespace():
    out = soap.inform_response("urn:dslforum-org:cwmp-1-2", "42abc")
    root = etree.fromstring(out)
    id_el = root.find(".//{urn:dslforum-org:cwmp-1-2}ID")
    assert id_el.text == "42abc"
    assert id_el.get(f"{{{soap.NS_SOAP_ENV}}}mustUnderstand") == "1"
    assert root.find(".//{urn:dslforum-org:cwmp-1-2}InformResponse/MaxEnvelopes").text == "1"
    # literal prefixes some CPEs depend on
    assert b"<soap-env:Envelope" in out and b"<cwmp:InformResponse>" in out
    assert b"xmlns:soap-enc=" in out and b"xmlns:xsd=" in out and b"xmlns:xsi=" in out


@pytest.mark.parametrize(
    "bad, reason",
    [
        (b"not xml at all", "malformed"),
        (b"<a><b></a>", "malformed"),
        (b"<Envelope><Header/></Envelope>", "no Body"),
        (
            b"<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'>"
            b"<soap:Body/></soap:Envelope>",
            "Body is empty",
        ),
        (b"<html><body>hi</body></html>", "not a SOAP Envelope"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Envelope><Body>&lol2;</Body></Envelope>',
            "DTD",
        ),
        (b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', "DTD"),
        (b"<Envelope>" + b"x" * 2_000_000 + b"</Envelope>", "exceeds"),
    ],
)
def test_bad_documents_are_refused_with_a_reason(bad, reason):
    with pytest.raises(SoapError, match=reason):
        soap.parse_envelope(bad)


def _response(body: str, ns: str = "urn:dslforum-org:cwmp-1-0") -> soap.Envelope:
    return soap.parse_envelope(
        f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:c="{ns}"><s:Header><c:ID s:mustUnderstand="1">7</c:ID></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>".encode()
    )


def test_the_five_responses():
    gpv = _response(
        '<c:GetParameterValuesResponse><ParameterList arrayType="c:ParameterValueStruct[9]">'
        "<ParameterValueStruct><Name>Device.A</Name><Value>1</Value></ParameterValueStruct>"
        "<ParameterValueStruct><Name>Device.B</Name><Value> x </Value></ParameterValueStruct>"
        "</ParameterList></c:GetParameterValuesResponse>"
    )
    assert soap.parse_response(gpv) == {"Device.A": "1", "Device.B": " x "}
    spv = _response(
        "<c:SetParameterValuesResponse><Status>1</Status></c:SetParameterValuesResponse>"
    )
    assert soap.parse_response(spv) == 1
    add = _response(
        "<c:AddObjectResponse><InstanceNumber>5</InstanceNumber>"
        "<Status>0</Status></c:AddObjectResponse>"
    )
    assert soap.parse_response(add) == soap.AddObjectResult(5, 0)
    dele = _response("<c:DeleteObjectResponse><Status>0</Status></c:DeleteObjectResponse>")
    assert soap.parse_response(dele) == 0
    gpn = _response(
        "<c:GetParameterNamesResponse><ParameterList>"
        "<ParameterInfoStruct><Name>Device.X.</Name><Writable>0</Writable></ParameterInfoStruct>"
        "<ParameterInfoStruct><Name>Device.X.Y</Name><Writable>1</Writable></ParameterInfoStruct>"
        "</ParameterList></c:GetParameterNamesResponse>"
    )
    assert soap.parse_response(gpn) == ["Device.X.", "Device.X.Y"]


def test_set_parameter_values_fault_with_parameter_faults():
    fault = _response(
        "<s:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>"
        "<detail><c:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString>"
        "<SetParameterValuesFault><ParameterName>Device.A</ParameterName>"
        "<FaultCode>9007</FaultCode><FaultString>Invalid value</FaultString>"
        "</SetParameterValuesFault></c:Fault></detail></s:Fault>"
    )
    parsed = soap.parse_response(fault)
    assert parsed.fault_code == "9003"
    assert parsed.fault_string == "Invalid arguments"
    assert parsed.parameter_faults == [soap.ParameterFault("Device.A", "9007", "Invalid value")]


def test_fault_without_cwmp_detail():
    fault = _response(
        "<s:Fault><faultcode>Server</faultcode><faultstring>boom</faultstring></s:Fault>"
    )
    parsed = soap.parse_response(fault)
    assert (parsed.fault_code, parsed.fault_string) == ("Server", "boom")


def test_transfer_complete():
    env = _response(
        "<c:TransferComplete><CommandKey>dl1</CommandKey><FaultStruct>"
        "<FaultCode>0</FaultCode><FaultString></FaultString></FaultStruct>"
        "<StartTime>2026-01-01T00:00:00Z</StartTime>"
        "<CompleteTime>2026-01-01T00:01:00Z</CompleteTime></c:TransferComplete>",
        "urn:dslforum-org:cwmp-1-4",
    )
    tc = soap.parse_transfer_complete(env.element)
    assert (tc.command_key, tc.fault_code) == ("dl1", 0)
    out = soap.transfer_complete_response(env.cwmp_ns, env.cwmp_id)
    assert b"cwmp-1-4" in out and b">7</cwmp:ID>" in out


@pytest.mark.parametrize(
    "payload",
    [
        # just the RPC element with an undeclared prefix, as scripts write it
        '<cwmp:GetParameterValues><ParameterNames soap-enc:arrayType="xsd:string[5]">'
        "<string>Device.DeviceInfo.</string><string>Device.X</string></ParameterNames>"
        "</cwmp:GetParameterValues>",
        # a whole envelope with other prefixes and its own declarations
        '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
        'envelope/" xmlns:urn="urn:dslforum-org:cwmp-1-4"><soapenv:Header/><soapenv:Body>'
        "<urn:GetParameterValues><ParameterNames><string>Device.DeviceInfo.</string>"
        "<string>Device.X</string></ParameterNames></urn:GetParameterValues>"
        "</soapenv:Body></soapenv:Envelope>",
        # no prefix at all
        "<GetParameterValues><ParameterNames><string>Device.DeviceInfo.</string>"
        "<string>Device.X</string></ParameterNames></GetParameterValues>",
    ],
)
def test_payload_forms_normalise_to_the_same_request(payload):
    req = soap.request_from_payload(payload, 0)
    assert req.names == ["Device.DeviceInfo.", "Device.X"]
    out = soap.build_request(req, "urn:dslforum-org:cwmp-1-3", "id9")
    assert b"<cwmp:GetParameterValues>" in out and b"cwmp-1-3" in out
    assert b'soap-enc:arrayType="xsd:string[2]"' in out
    root = etree.fromstring(out)
    assert root.find(".//{urn:dslforum-org:cwmp-1-3}ID").text == "id9"


def test_set_values_keep_or_default_xsi_type():
    req = soap.request_from_payload(
        "<cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>Device.A</Name>"
        '<Value xsi:type="xsd:unsignedInt">5</Value></ParameterValueStruct>'
        "<ParameterValueStruct><Name>Device.B</Name><Value>on</Value></ParameterValueStruct>"
        '<ParameterValueStruct><Name>Device.C</Name><Value xmlns:x="http://www.w3.org/2001/'
        'XMLSchema" xsi:type="x:boolean">1</Value></ParameterValueStruct></ParameterList>'
        "<ParameterKey>k1</ParameterKey></cwmp:SetParameterValues>",
        1,
    )
    assert req.values == [
        ("Device.A", "5", "unsignedInt"),
        ("Device.B", "on", "string"),
        ("Device.C", "1", "boolean"),
    ]
    out = soap.build_request(req, soap.DEFAULT_CWMP_NS, "1")
    assert b'<Value xsi:type="xsd:unsignedInt">5</Value>' in out
    assert b'<Value xsi:type="xsd:string">on</Value>' in out
    assert b"cwmp:ParameterValueStruct[3]" in out
    assert b"<ParameterKey>k1</ParameterKey>" in out


@pytest.mark.parametrize(
    "payload, mtype, reason",
    [
        ("<cwmp:GetParameterNames/>", 0, "payload is <GetParameterNames>"),
        ("<cwmp:AddObject><ObjectName/></cwmp:AddObject>", 2, "needs an ObjectName"),
        ("<a/><b/>", 0, "one XML element"),
        ("<cwmp:GetParameterValues>", 0, "malformed"),
        ('<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', 0, "DTD"),
    ],
)
def test_bad_payloads(payload, mtype, reason):
    with pytest.raises(SoapError, match=reason):
        soap.request_from_payload(payload, mtype)


def test_request_round_trips_through_json():
    req = soap.request_from_payload(
        "<cwmp:GetParameterNames><ParameterPath>Device.</ParameterPath>"
        "<NextLevel>1</NextLevel></cwmp:GetParameterNames>",
        4,
    )
    assert req.next_level is True and req.path == "Device."
    assert soap.RpcRequest.from_json(req.to_json()) == req
