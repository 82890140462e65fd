"""The controller's settings: Endpoint ID format, MQTT version, agents to dial."""

from __future__ import annotations

import pytest

from oktoscripts.config import ConfigError
from oktoscripts.usp.app import ControllerConfig
from oktoscripts.usp.endpoint import endpoint_id_problem


@pytest.mark.parametrize(
    "eid, ok",
    [
        ("oui:00256D:my-unique-bbf-id-42", True),
        ("proto::controller-1", True),
        ("os::00D09E-sim-00001", True),
        ("no-colons", False),
        ("bogus:x:y", False),
        ("oui:00256D:", False),
    ],
)
def test_endpoint_id_format(eid, ok):
    assert (endpoint_id_problem(eid) is None) == ok


def test_dial_list_and_defaults(settings):
    settings.USP_WS_DIAL = ["os::gw-1=ws://127.0.0.1:9001/usp"]
    config = ControllerConfig.from_settings()
    assert config.ws_dial == [("os::gw-1", "ws://127.0.0.1:9001/usp")]
    assert config.endpoint_id == settings.USP_ENDPOINT_ID


@pytest.mark.parametrize(
    "name, value, setting",
    [
        ("USP_WS_DIAL", ["ws://127.0.0.1:9001/usp"], "OKTOSCRIPTS_USP_WS_DIAL"),
        ("USP_MQTT_VERSION", "4", "OKTOSCRIPTS_USP_MQTT_VERSION"),
        ("USP_ENDPOINT_ID", "controller", "OKTOSCRIPTS_USP_ENDPOINT_ID"),
        ("USP_WS_AUTH", "maybe", "OKTOSCRIPTS_USP_WS_AUTH"),
        ("USP_MQTT_TOPIC", "usp/+/controller", "OKTOSCRIPTS_USP_MQTT_TOPIC"),
        ("USP_MQTT_AGENT_TOPIC", "/usp/agent", "OKTOSCRIPTS_USP_MQTT_AGENT_TOPIC"),
        ("USP_MQTT_IDENTITY", "trust-me", "OKTOSCRIPTS_USP_MQTT_IDENTITY"),
    ],
)
def test_bad_settings_name_the_variable(settings, name, value, setting):
    setattr(settings, name, value)
    with pytest.raises(ConfigError) as error:
        ControllerConfig.from_settings()
    assert error.value.setting == setting


@pytest.mark.parametrize(
    "value, mode", [("on", "on"), ("1", "on"), ("cert", "cert"), ("off", "off"), ("false", "off")]
)
def test_websocket_auth_modes(settings, value, mode):
    settings.USP_WS_AUTH = value
    assert ControllerConfig.from_settings().ws_auth == mode


def test_defaults_are_tls_and_topic_identity(settings):
    config = ControllerConfig.from_settings()
    assert (config.ws_tls, config.ws_auth, config.mqtt_identity) == (True, "on", "topic")
