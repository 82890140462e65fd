"""send_usp_message end to end: Lua -> worker binding -> NATS -> controller ->
MTP (MQTT 3.1.1, WebSocket, MQTT 5) -> simulated agent, and back."""

from __future__ import annotations

import asyncio

import pytest


def _sn(usp, index=0):
    return usp.agents[index].config.endpoint_id


async def test_get_with_search_path_and_both_spellings(usp):
    outcome, run = await usp.run(
        r"""
        local sn = args.sn
        local r = send_usp_message(sn, '{"header": {"msg_id": "g1", "msg_type": "GET"},' ..
          '"body": {"request": {"get": {"paramPaths": ["Device.DeviceInfo.SoftwareVersion",' ..
          '"Device.WiFi.SSID.*.SSID"]}}}}')
        local t = send_usp_message(sn, {header = {msg_type = 1}, body = {request = {get =
          {param_paths = {"Device.IP.Interface.[Alias==\"wan\"].IPv4Address.1.IPAddress"}}}}})
        local none = send_usp_message(sn, {body = {request = {get =
          {param_paths = {"Device.IP.Interface.[Alias==\"nothing\"].Name"}}}}})
        local n = 0
        for _ in pairs(none) do n = n + 1 end
        return {version = r["Device.DeviceInfo.SoftwareVersion"],
                ssid1 = r["Device.WiFi.SSID.1.SSID"], ssid2 = r["Device.WiFi.SSID.2.SSID"],
                wan = t["Device.IP.Interface.1.IPv4Address.1.IPAddress"], empty = n}
    """,
        args={"sn": _sn(usp)},
    )
    assert outcome.status == "succeeded", outcome.error
    serial = usp.agents[0].config.serial
    assert outcome.result == {
        "version": "4.2.0",
        "ssid1": f"Sim-{serial}-2.4GHz",
        "ssid2": f"Sim-{serial}-5GHz",
        "wan": "100.64.0.1",
        "empty": 0,
    }
    calls = outcome.metrics["device_calls"]
    assert len(calls) == 3 and calls[0]["name"] == "send_usp_message"


async def test_get_max_depth_limits_the_object_tree(usp):
    outcome, _ = await usp.run(
        r"""
        local r = send_usp_message(args.sn, {body = {request = {get =
          {param_paths = {"Device.IP."}, max_depth = 2}}}})
        return {top = r["Device.IP.IPv4Enable"], iface = r["Device.IP.Interface.1.Name"],
                deep = r["Device.IP.Interface.1.IPv4Address.1.IPAddress"]}
    """,
        args={"sn": _sn(usp)},
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {"top": "true", "iface": "wan0"}


async def test_set_success_and_required_failure(usp):
    outcome, _ = await usp.run(
        r"""
        local sn = args.sn
        local ok = send_usp_message(sn, {body = {request = {set = {update_objs = {
          {obj_path = "Device.WiFi.SSID.1.", param_settings = {
            {param = "SSID", value = "lua-net", required = true}}}}}}}})
        local check = send_usp_message(sn, {body = {request = {get =
          {param_paths = {"Device.WiFi.SSID.1.SSID"}}}}})
        local bad = send_usp_message(sn, {body = {request = {set = {allow_partial = false,
          update_objs = {{obj_path = "Device.WiFi.SSID.1.", param_settings = {
            {param = "Status", value = "Down", required = true}}}}}}}})
        return {ok = ok, now = check["Device.WiFi.SSID.1.SSID"], bad = bad}
    """,
        args={"sn": _sn(usp)},
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["ok"] == {"Device.WiFi.SSID.1.SSID": "lua-net"}
    assert outcome.result["now"] == "lua-net"
    bad = outcome.result["bad"]
    assert bad["error_code"] == "7004"
    assert bad["param_errs"] == [
        {
            "param_path": "Device.WiFi.SSID.1.Status",
            "err_code": "7013",
            "err_msg": "Device.WiFi.SSID.1.Status is read-only",
        }
    ]


async def test_add_delete_and_get_instances(usp):
    outcome, _ = await usp.run(
        r"""
        local sn = args.sn
        local added = send_usp_message(sn, {body = {request = {add = {create_objs = {
          {obj_path = "Device.WiFi.SSID.", param_settings = {{param = "SSID", value = "guest"}}}
        }}}}})
        local path = added[1].instantiated_path
        local inst = send_usp_message(sn, {body = {request = {get_instances =
          {obj_paths = {"Device.WiFi.SSID."}, first_level_only = true}}}})
        local deleted = send_usp_message(sn, {body = {request = {delete = {obj_paths = {path}}}}})
        local again = send_usp_message(sn, {body = {request = {delete = {obj_paths = {path}}}}})
        local paths = {}
        for i, v in ipairs(inst) do paths[i] = v.instantiated_obj_path end
        return {path = path, alias = added[1].unique_keys.Alias, instances = paths,
                deleted = deleted, again = again.error_code}
    """,
        args={"sn": _sn(usp)},
    )
    assert outcome.status == "succeeded", outcome.error
    result = outcome.result
    assert result["path"] == "Device.WiFi.SSID.3."
    assert result["alias"] == "cpe-3"
    assert result["instances"] == [
        "Device.WiFi.SSID.1.",
        "Device.WiFi.SSID.2.",
        "Device.WiFi.SSID.3.",
    ]
    assert result["deleted"] == ["Device.WiFi.SSID.3."]
    assert result["again"] == "7016"


async def test_operate_sync_async_and_reboot(usp):
    agent = usp.agents[1]
    outcome, _ = await usp.run(
        r"""
        local sn = args.sn
        local ping = send_usp_message(sn, {body = {request = {operate = {
          command = "Device.IP.Diagnostics.IPPing()", command_key = "p1", send_resp = true,
          input_args = {Host = "192.0.2.1", NumberOfRepetitions = "4"}}}}})
        local missing = send_usp_message(sn, {body = {request = {operate = {
          command = "Device.IP.Diagnostics.IPPing()", send_resp = true}}}})
        local bogus = send_usp_message(sn, {body = {request = {operate = {
          command = "Device.Explode()", send_resp = true}}}})
        -- Last: a request sent while the agent reboots may find it gone.
        local reboot = send_usp_message(sn, {body = {request = {operate = {
          command = "Device.Reboot()", command_key = "rb-1", send_resp = true}}}})
        return {ping = ping, missing = missing.error_code, reboot = reboot,
                bogus = bogus.error_code}
    """,
        args={"sn": agent.config.endpoint_id},
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["ping"] == {"req_obj_path": "Device.LocalAgent.Request.1."}
    assert outcome.result["missing"] == "7027"
    assert outcome.result["reboot"] in ({}, [])  # an empty Lua table
    assert outcome.result["bogus"] == "7026"
    # The reboot brings a Boot! with the command key, answered with a NotifyResp.
    for _ in range(200):
        if agent.notify_responses.count("boot") >= 2:
            break
        await asyncio.sleep(0.05)
    assert agent.notify_responses.count("boot") >= 2


async def test_get_supported_dm_and_protocol(usp):
    outcome, _ = await usp.run(
        r"""
        local sn = args.sn
        local dm = send_usp_message(sn, {body = {request = {get_supported_dm = {
          obj_paths = {"Device.WiFi."}, return_params = true, return_commands = true}}}})
        local proto = send_usp_message(sn, {header = {msg_type = "GET_SUPPORTED_PROTO"},
          body = {request = {get_supported_protocol = {
            controller_supported_protocol_versions = "1.3"}}}})
        local ssid = dm["Device.WiFi.SSID.{i}."]
        return {multi = ssid.is_multi_instance, access = ssid.access,
                ssid = ssid.params.SSID.access, ping = dm["Device.WiFi."] ~= nil,
                versions = proto.agent_supported_protocol_versions}
    """,
        args={"sn": _sn(usp)},
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {
        "multi": True,
        "access": "OBJ_ADD_DELETE",
        "ssid": "PARAM_READ_WRITE",
        "ping": True,
        "versions": "1.0,1.1,1.2,1.3",
    }


async def test_argument_errors_have_the_registry_format(usp):
    outcome, _ = await usp.run('send_usp_message("not an id", "{}")')
    assert outcome.status == "failed"
    assert (
        "send_usp_message: argument #1 (serial) must be a USP Endpoint ID" in outcome.error.message
    )
    assert outcome.error.line == 1
    outcome, _ = await usp.run(f'\nsend_usp_message("{_sn(usp)}", nil)')
    assert outcome.error.message.endswith(
        "send_usp_message: argument #2 (json payload) must be a JSON string or a table, got nil"
    )
    assert outcome.error.line == 2
    outcome, _ = await usp.run(f'send_usp_message("{_sn(usp)}", "{{oops")')
    assert (
        "argument #2 (json payload) must be a USP request Msg (payload is not valid JSON"
        in outcome.error.message
    )


async def test_unknown_agent_and_usp_error_tables(usp):
    outcome, _ = await usp.run(
        r"""
        local unknown = send_usp_message("os::nobody-at-all",
          {body = {request = {get = {param_paths = {"Device."}}}}})
        local bad = send_usp_message(args.sn, {body = {request = {get =
          {param_paths = {"Device.NoSuchThing."}}}}})
        return {unknown = unknown, bad = bad}
    """,
        args={"sn": _sn(usp)},
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["unknown"]["error_code"] == "404"
    assert outcome.result["bad"]["error_code"] == "7026"
    assert outcome.result["bad"]["param_errs"][0]["param_path"] == "Device.NoSuchThing."


async def test_responses_out_of_order_are_matched_by_msg_id(usp):
    agent = usp.agents[2]
    agent.hooks.delays["Device.DeviceInfo.ModelName"] = 0.6
    try:
        outcome, _ = await usp.run(
            r"""
            local sn = args.sn
            local results = {}
            local function get(path, key)
              return coroutine.create(function()
                local r = send_usp_message(sn, {body = {request = {get = {param_paths = {path}}}}})
                results[key] = r[path]
                results[key .. "_done"] = os.clock()
              end)
            end
            -- the slow request goes first; its answer arrives last
            local slow = get("Device.DeviceInfo.ModelName", "slow")
            local fast = get("Device.DeviceInfo.SerialNumber", "fast")
            coroutine.resume(slow)
            coroutine.resume(fast)
            while coroutine.status(slow) ~= "dead" or coroutine.status(fast) ~= "dead" do
              sleep(0.05)
            end
            return {slow = results.slow, fast = results.fast}
        """,
            args={"sn": agent.config.endpoint_id},
        )
    finally:
        agent.hooks.delays.clear()
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {"slow": "USP-GW-1", "fast": agent.config.serial}


async def test_refresh_device_parameters_over_usp(usp):
    sn = _sn(usp)
    outcome, _ = await usp.run("return refresh_device_parameters(args.sn)", args={"sn": sn})
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result is True
    device = await asyncio.to_thread(usp.registry.get_lua, sn)
    params = device["params"]
    assert params["Device.DeviceInfo.SoftwareVersion"] == "4.2.0"
    assert params["Device.PPP.Interface.1.Username"].endswith("@isp.example")
    assert params["Device.Ethernet.Interface.1.MACAddress"].startswith("02:00:")
    calls = [c["name"] for c in outcome.metrics["device_calls"]]
    assert calls == ["refresh_device_parameters"]  # one trace line, not two


@pytest.mark.parametrize(
    "payload",
    [
        '{"body": {"request": {"operate": {"command": '
        '"Device.SelfTestDiagnostics()", "send_resp": false}}}}'
    ],
)
async def test_operate_without_response_returns_at_once(usp, payload):
    outcome, _ = await usp.run(
        "return send_usp_message(args.sn, args.p)", args={"sn": _sn(usp), "p": payload}
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result in ({}, [], None)


async def test_error_shapes_of_add_get_instances_and_get_supported_dm(usp):
    outcome, _ = await usp.run(
        r"""
        local sn = args.sn
        local add = send_usp_message(sn, {body = {request = {add = {create_objs = {
          {obj_path = "Device.WiFi.Radio."}}}}}})
        local inst = send_usp_message(sn, {body = {request = {get_instances = {
          obj_paths = {"Device.Nothing."}}}}})
        local dm = send_usp_message(sn, {body = {request = {get_supported_dm = {
          obj_paths = {"Device.Nothing."}}}}})
        return {add = add, inst = inst, dm = dm}
    """,
        args={"sn": _sn(usp)},
    )
    assert outcome.status == "succeeded", outcome.error
    add, inst, dm = outcome.result["add"], outcome.result["inst"], outcome.result["dm"]
    assert add["error_code"] == "7019"
    assert add["param_errs"][0]["param_path"] == "Device.WiFi.Radio."
    assert inst["error_code"] == "7026" and inst["param_errs"][0]["param_path"] == "Device.Nothing."
    assert dm["error_code"] == "7026" and dm["param_errs"][0]["param_path"] == "Device.Nothing."


async def test_mqtt5_bad_record_is_reported_with_a_usp_error_publish(usp):
    if usp.variant != "mqtt-5":
        pytest.skip("the usp.error PUBLISH exists in MQTT 5 only (3.1.1 drops silently)")
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from oktoscripts.usp import mqtt_topics

    address = mqtt_topics.broker_address(usp.mqtt_url)
    reply_topic = f"{usp.process.config.mqtt_topic}-probe/reply"
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = reply_topic
    props.UserProperty = [("usp-err-id", "probe/1")]
    async with aiomqtt.Client(
        address.host, address.port, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        await client.subscribe(reply_topic)
        await client.publish(usp.process.config.mqtt_topic, b"\xff garbage", properties=props)
        async with asyncio.timeout(10):
            message = await anext(aiter(client.messages))
    assert message.properties.ContentType == "application/vnd.bbf.usp.error"
    assert ("usp-err-id", "probe/1") in message.properties.UserProperty
    assert message.payload.decode().startswith("err_code:7100\nerr_msg:")
