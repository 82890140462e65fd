"""The controller's NATS side: answers workers' requests (bus.py) and
publishes the notifications agents send."""

from __future__ import annotations

import asyncio
import logging

from nats.aio.client import Client
from nats.aio.msg import Msg as NatsMsg

from oktoscripts.usp import bus
from oktoscripts.usp.controller import AgentUnavailable, Controller, notification_payload
from oktoscripts.usp.messages import Msg
from oktoscripts.usp.results import error_table

log = logging.getLogger(__name__)

QUEUE_GROUP = "usp-controller"
MAX_TIMEOUT_S = 3600.0


class ControllerService:
    def __init__(self, controller: Controller, nc: Client) -> None:
        self.controller = controller
        self.nc = nc
        self._tasks: set[asyncio.Task] = set()
        self._subscription = None
        self._publisher: asyncio.Task | None = None

    async def start(self) -> None:
        self._subscription = await self.nc.subscribe(
            bus.request_subject(), queue=QUEUE_GROUP, cb=self._on_request
        )
        self._publisher = asyncio.get_running_loop().create_task(self._publish_notifications())

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        if self._publisher is not None:
            self._publisher.cancel()
        for task in list(self._tasks):
            task.cancel()

    async def _on_request(self, nmsg: NatsMsg) -> None:
        # NATS runs one subscription's callbacks one after another: answer each
        # request in its own task so a slow agent holds up nobody else.
        task = asyncio.get_running_loop().create_task(self._serve(nmsg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, nmsg: NatsMsg) -> None:
        try:
            request = bus.ControllerRequest.decode(nmsg.data)
            usp_msg = Msg.FromString(request.msg)
        except Exception as exc:
            error = error_table("500", f"bad controller request: {exc}")
            await nmsg.respond(bus.reply_error(error))
            return
        timeout = max(0.0, min(request.timeout_s, MAX_TIMEOUT_S))
        try:
            response = await self.controller.request(
                request.to_id, usp_msg, timeout, request.expect_response
            )
            reply = (
                bus.reply_sent()
                if response is None
                else bus.reply_msg(response.SerializeToString())
            )
        except AgentUnavailable as exc:
            reply = bus.reply_error(error_table(exc.code, exc.message))
        except TimeoutError:
            reply = bus.reply_error(
                error_table("408", f"USP agent {request.to_id} did not answer within {timeout:g} s")
            )
        try:
            await nmsg.respond(reply)
        except Exception as exc:  # the bus went away: the worker sees its own timeout
            log.warning("usp: cannot answer a request for %s: %s", request.to_id, exc)

    async def _publish_notifications(self) -> None:
        subject = bus.notify_subject()
        while True:
            event = await self.controller.notifications.get()
            try:
                await self.nc.publish(subject, notification_payload(event))
            except Exception as exc:
                log.warning("usp: cannot publish a notification: %s", exc)
