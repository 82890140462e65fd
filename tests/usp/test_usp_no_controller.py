"""Without a USP controller, scripts get an error table at once, not a hang."""

from __future__ import annotations

import time


async def test_no_controller_gives_503(nats_url, mongo_db):
    import nats

    from oktoscripts.bindings.services import Services
    from oktoscripts.lua.limits import Limits
    from oktoscripts.lua.run import LuaRun

    nc = await nats.connect(nats_url)
    try:
        started = time.monotonic()
        outcome = await LuaRun(
            'return send_usp_message("os::anyone", {body = {request = {get = '
            '{param_paths = {"Device."}}}}})',
            services=Services(nats=nc, mongo=mongo_db),
            limits=Limits(wall_seconds=20),
        ).run()
    finally:
        await nc.close()
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result["error_code"] == "503"
    assert "controller is not running" in outcome.result["error_message"]
    assert time.monotonic() - started < 10
