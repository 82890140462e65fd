"""The ACS reads a twin's (any CPE's) GetParameterValues answer in one pass
over each struct (bench.twins): the same result as looking each child up,
whatever the CPE qualifies, nests or pads."""

from __future__ import annotations

from oktoscripts.cwmp import soap


def _answer(structs: str) -> dict:
    envelope = soap.parse_envelope(
        (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:c="urn:dslforum-org:cwmp-1-2" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Header>'
            '<c:ID s:mustUnderstand="1">1</c:ID></s:Header><s:Body>'
            f"<c:GetParameterValuesResponse><ParameterList>{structs}</ParameterList>"
            "</c:GetParameterValuesResponse></s:Body></s:Envelope>"
        ).encode()
    )
    values = soap.parse_response(envelope)
    return {name: (value, values.types[name]) for name, value in values.items()}


def test_qualified_padded_and_nested_names_and_values():
    assert _answer(
        '<ParameterValueStruct><Name> Device.A </Name><Value xsi:type="xsd:unsignedInt">'
        " 5 </Value></ParameterValueStruct>"
        '<ParameterValueStruct><c:Name>Device.B</c:Name><c:Value xsi:type="xsd:boolean">1'
        "</c:Value></ParameterValueStruct>"
        # Both: the unqualified one, as a lookup by name finds it first.
        "<ParameterValueStruct><c:Name>Device.Wrong</c:Name><Name>Device.C</Name>"
        "<c:Value>no</c:Value><Value>yes</Value></ParameterValueStruct>"
        "<ParameterValueStruct><Name>Device.D</Name><Value>a<b>b</b>c</Value>"
        "</ParameterValueStruct>"
        "<ParameterValueStruct><Name>Device.E</Name></ParameterValueStruct>"
        "<ParameterValueStruct><Name></Name><Value>dropped</Value></ParameterValueStruct>"
    ) == {
        "Device.A": (" 5 ", "unsignedInt"),
        "Device.B": ("1", "boolean"),
        "Device.C": ("yes", "string"),
        "Device.D": ("abc", "string"),
        "Device.E": ("", "string"),
    }
