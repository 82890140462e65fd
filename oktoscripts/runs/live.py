"""A run's live output and status: the one module that publishes and follows them.

On NATS, ``<prefix>.runs.<id>.output`` carries one message per output line,
``{"seq", "stream", "text", "level", "time"}``, with the same ``seq`` as the
stored RunOutputLine; ``<prefix>.runs.<id>.status`` carries
``{"run_id", "status", "time", ...}``. The final status (succeeded, failed,
cancelled, limit_exceeded, lost) is published only after the run's result,
error, metrics and output are stored, and carries ``error`` and, when small,
``result``.

Publishers (the worker, the run queue) build messages here; followers (the run
console's WebSocket, ``runscript --remote``) read a run through ``RunFeed``:
the stored lines first, then the live ones with a greater ``seq``, nothing
twice and nothing missing, and at the end the stored outcome. Whoever shows
the feed only frames its events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from nats.aio.client import Client
from nats.aio.subscription import Subscription

from oktoscripts.bus import subjects
from oktoscripts.bus.connection import connect

# Live copies of huge lines are cut (the stored line keeps the full text).
LIVE_TEXT_MAX = 64 * 1024
# A final status carries the result when its JSON is at most this long.
LIVE_RESULT_MAX = 64 * 1024
BATCH = 500  # lines per "lines" event
GAP_WAIT_S = 3.0  # how long to wait for a missing line to be stored
RESYNC_S = 5.0  # a quiet feed looks at the database this often
TAIL_MAX = 50_000  # the most a follower may ask to get of the stored lines at once


# -- publishing ----------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    subject: str
    data: bytes


def output_message(
    run_id: str, seq: int, stream: str, text: str, level: str | None, at: float
) -> Message:
    if len(text) > LIVE_TEXT_MAX:
        text = text[:LIVE_TEXT_MAX] + f"… [cut, {len(text)} characters in the stored output]"
    message = {"seq": seq, "stream": stream, "text": text, "level": level, "time": at}
    return Message(subjects.run_output(run_id), json.dumps(message, ensure_ascii=False).encode())


def status_message(run_id: str, status: str, **details: Any) -> Message:
    message = {"run_id": run_id, "status": status, "time": time.time()}
    if "result" in details:
        encoded = json.dumps(details["result"])
        if len(encoded) > LIVE_RESULT_MAX:
            details = {k: v for k, v in details.items() if k != "result"}
            details["result_stored"] = True
    message.update(details)
    return Message(subjects.run_status(run_id), json.dumps(message, ensure_ascii=False).encode())


async def publish(nc: Client, message: Message) -> None:
    await nc.publish(message.subject, message.data)


def decode(data: bytes) -> dict:
    return json.loads(data)


async def subscribe_statuses(nc: Client, cb: Callable[[dict], Awaitable[None]]) -> Subscription:
    """Every run's status changes, decoded (the automation service waits on them)."""

    async def on_message(msg: Any) -> None:
        try:
            message = decode(msg.data)
        except ValueError:
            return
        await cb(message)

    return await nc.subscribe(subjects.run_status("*"), cb=on_message)


# -- following -------------------------------------------------------------------

_clients: dict[asyncio.AbstractEventLoop, Client] = {}
_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def client() -> Client:
    """The web process's shared NATS client of the running loop, connected on first use."""
    loop = asyncio.get_running_loop()
    async with _locks.setdefault(loop, asyncio.Lock()):
        nc = _clients.get(loop)
        if nc is None or nc.is_closed:
            nc = await connect("oktoscripts-web")
            _clients[loop] = nc
        return nc


def stored_line(line: Any) -> dict[str, Any]:
    """A stored RunOutputLine in the shape of a live output message."""
    return {
        "seq": line.seq,
        "stream": line.stream,
        "text": line.text,
        "level": line.level,
        "time": line.time.timestamp(),
    }


def _in_thread(fn: Callable) -> Callable:
    """``fn`` run off the event loop, with Django's database connections tidied
    around it as a request would (long-lived consoles outlive connections)."""

    def tidy(*args: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args)
        finally:
            close_old_connections()

    return sync_to_async(tidy)


@_in_thread
def _run_state(run_id: str) -> dict[str, Any] | None:
    from oktoscripts.runs.models import Run

    return (
        Run.objects.filter(pk=run_id)
        .values("status", "result", "error", "metrics", "created", "started", "finished")
        .first()
    )


@_in_thread
def _stored_lines(run_id: str, after: int, before: int | None = None) -> list[dict[str, Any]]:
    from oktoscripts.runs.models import RunOutputLine

    lines = RunOutputLine.objects.filter(run_id=run_id, seq__gt=after)
    if before is not None:
        lines = lines.filter(seq__lt=before)
    return [stored_line(x) for x in lines.order_by("seq")[:50_000]]


# Statuses in the order a run goes through them; a follower never goes back
# (a "queued" message that arrives after the run was read as running is old news).
_STAGE = {"queued": 0, "running": 1, "listening": 2}
_FINAL_STAGE = 3


def stage(status: str | None) -> int:
    """How far along ``status`` is: queued < running < listening < any final one."""
    return _STAGE.get(status or "", _FINAL_STAGE)


@_in_thread
def _last_seq(run_id: str) -> int:
    from oktoscripts.runs.models import RunOutputLine

    last = RunOutputLine.objects.filter(run_id=run_id).order_by("-seq").values("seq").first()
    return last["seq"] if last else 0


def _epoch(value: Any) -> float | None:
    return value.timestamp() if value else None


class RunGone(Exception):
    """The run does not exist (or did not appear within the wait)."""


class RunFeed:
    """One run as its follower sees it: events ``(kind, data)`` with kind
    "lines" (``{"lines": [...]}``), "run" (its state when the feed starts),
    "status" (a change) and, last, "end" (the stored outcome).

    The feed subscribes to the run's subjects *before* reading the stored
    lines, then passes on live lines whose ``seq`` is greater than the last one
    given. A gap (a line published before the subscription but stored after the
    read) is filled from the database. The final status is published only after
    everything is stored, so on it the feed reads the remaining lines and the
    outcome from the database. After RESYNC_S without a message it reads the
    database too: live messages are lost while this process moves to another
    NATS server (one of a cluster lost), and a lost final status must not leave
    the follower waiting for ever."""

    def __init__(self, run_id: str, after: int = 0, tail: int | None = None) -> None:
        from oktoscripts.runs.models import Run

        self.run_id = str(run_id)
        self.sent = max(0, after)
        # With ``tail``, a follower that is far behind gets only the last ``tail``
        # stored lines (it pages the earlier ones itself, by seq, from the REST API):
        # a run of 100,000 lines opens at once.
        self.tail = tail
        self.final = Run.FINAL
        self.stage = -1  # of the last status given
        self._queue: asyncio.Queue = asyncio.Queue()
        self._sub: Subscription | None = None

    @staticmethod
    async def exists(run_id: str) -> bool:
        return await _run_state(str(run_id)) is not None

    async def subscribe(self, nc: Client) -> None:
        """Listen before anything is read (or, for a run not yet submitted, before
        it is submitted): nothing published from now on is missed."""
        self._sub = await nc.subscribe(subjects.run_events(self.run_id), cb=self._queue.put)
        await nc.flush()

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # noqa: BLE001 - the connection is closing
                pass

    async def events(self, wait_for_run: float = 0.0) -> AsyncIterator[tuple[str, dict]]:
        """The feed; ``wait_for_run`` seconds for a run that is still being submitted
        (RunGone when it does not appear)."""
        if wait_for_run:
            await self._wait_for_run(wait_for_run)
        await self._skip_to_tail()
        async for lines in self._lines(await _stored_lines(self.run_id, self.sent)):
            yield lines
        state = await _run_state(self.run_id)
        if state is None:
            raise RunGone(self.run_id)
        self.stage = stage(state["status"])
        yield (
            "run",
            {
                "status": state["status"],
                "created": _epoch(state["created"]),
                "started": _epoch(state["started"]),
            },
        )
        if state["status"] in self.final:
            async for event in self._end():
                yield event
            return
        while True:
            try:
                batch = [await asyncio.wait_for(self._queue.get(), RESYNC_S)]
            except TimeoutError:
                events = self._resync()
            else:
                while not self._queue.empty() and len(batch) < BATCH:
                    batch.append(self._queue.get_nowait())
                events = self._handle(batch)
            ended = False
            async for event in events:
                ended = ended or event[0] == "end"
                yield event
            if ended:
                return

    async def _wait_for_run(self, seconds: float) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while await _run_state(self.run_id) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise RunGone(self.run_id)
            await asyncio.sleep(0.02)

    async def _lines(self, lines: list[dict[str, Any]]) -> AsyncIterator[tuple[str, dict]]:
        lines = [x for x in lines if x["seq"] > self.sent]
        for i in range(0, len(lines), BATCH):
            yield "lines", {"lines": lines[i : i + BATCH]}
        if lines:
            self.sent = lines[-1]["seq"]

    async def _handle(self, batch: list[Any]) -> AsyncIterator[tuple[str, dict]]:
        """The events of a batch of NATS messages, ending with "end" when the run has."""
        lines: list[dict[str, Any]] = []
        for msg in batch:
            kind = msg.subject.rsplit(".", 1)[-1]
            data = decode(msg.data) if msg.data else {}
            if kind == "output":
                seq = data.get("seq", 0)
                last = lines[-1]["seq"] if lines else self.sent
                if seq <= last:
                    continue
                if seq > last + 1:
                    async for event in self._lines(lines):
                        yield event
                    lines = []
                    async for event in self._lines(await self._gap(seq)):
                        yield event
                lines.append(data)
            elif kind == "status":
                async for event in self._lines(lines):
                    yield event
                lines = []
                status = data.get("status")
                if status in self.final:
                    async for event in self._end():
                        yield event
                    return
                if stage(status) > self.stage:
                    self.stage = stage(status)
                    yield "status", {"status": status}
        async for event in self._lines(lines):
            yield event

    async def _resync(self) -> AsyncIterator[tuple[str, dict]]:
        """What the database has that no message brought, ending with "end" when
        the run has ended."""
        state = await _run_state(self.run_id)
        if state is None:
            raise RunGone(self.run_id)
        if state["status"] in self.final:
            async for event in self._end():
                yield event
            return
        await self._skip_to_tail()
        async for event in self._lines(await _stored_lines(self.run_id, self.sent)):
            yield event

    async def _gap(self, upto: int) -> list[dict[str, Any]]:
        """Lines sent+1 .. upto-1 went out before we subscribed: read them once stored."""
        deadline = asyncio.get_running_loop().time() + GAP_WAIT_S
        while True:
            lines = await _stored_lines(self.run_id, self.sent, upto)
            if len(lines) >= upto - self.sent - 1 or asyncio.get_running_loop().time() > deadline:
                return lines
            await asyncio.sleep(0.05)

    async def _skip_to_tail(self) -> None:
        if self.tail is not None:
            self.sent = max(self.sent, await _last_seq(self.run_id) - self.tail)

    async def _end(self) -> AsyncIterator[tuple[str, dict]]:
        await self._skip_to_tail()
        async for event in self._lines(await _stored_lines(self.run_id, self.sent)):
            yield event
        state = await _run_state(self.run_id)
        yield (
            "end",
            {
                "status": state["status"],
                "result": state["result"],
                "error": state["error"],
                "metrics": state["metrics"],
                "finished": _epoch(state["finished"]),
            },
        )
