"""The ACS: the HTTP side of CWMP sessions.

One asyncio server; each TCP connection is read request by request with h11.
A session starts with an Inform (the device is registered and its events
published before the InformResponse goes out), then the ACS answers CPE
requests and, on the CPE's empty POST, sends the device's queued RPCs one by
one; it ends the session with 204 No Content when nothing is left.

Protocol oddities are answered with a SOAP Fault or 204, never 4xx (some CPEs
back off for hours after a 4xx), each is logged, and nothing a CPE sends can
affect another session. See docs/protocols.md.

The port faces the internet, so who may do what is decided as early as it can be:

- authentication is checked on a request's headers, before its body is read:
  an unauthenticated client gets its 401 after a short body is read away
  (so the Digest handshake can go on on the same connection) or, for a longer
  one, with the connection closed; nothing it sends is kept;
- a Digest Authorization is good once per nonce count, and a source that
  keeps failing is refused unchecked for a while (authentication.py);
- a session (its cookie) belongs to the credential that opened it: a cookie
  presented on another connection needs that same credential;
- an Inform's DeviceId must be valid (identifiers.py) and one the credential
  speaks for (credentials.DeviceBinding), else it is refused and logged with
  the claimed identity and the source address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from oktoscripts.bus import subjects
from oktoscripts.cwmp import answers, day2, events, paths, soap, tls
from oktoscripts.cwmp.authentication import CpeAuthenticator
from oktoscripts.cwmp.backend import DeviceBackend
from oktoscripts.cwmp.config import AcsConfig
from oktoscripts.cwmp.files import FileServer
from oktoscripts.cwmp.http11 import BodyTooLarge, HttpError, Request, Response, ServerConnection
from oktoscripts.cwmp.memory import Trimmer
from oktoscripts.cwmp.onboarding import FACTORY_USER, FactoryCredentials
from oktoscripts.cwmp.queue import QueuedRpc, RpcQueue
from oktoscripts.cwmp.session import COOKIE_NAME, Expansion, Pending, Session, SessionTable
from oktoscripts.cwmp.soap import SoapError
from oktoscripts.devices.identifiers import cwmp_device_id_problem
from oktoscripts.filestore import signing
from oktoscripts.filestore.store import FileStore
from oktoscripts.metrics import series

log = logging.getLogger(__name__)

XML_HEADERS = [("Content-Type", 'text/xml; charset="utf-8"')]
NO_CONTENT = Response(204)
SWEEP_INTERVAL_S = 1.0
STATS_INTERVAL_S = 60.0
READ_ONLY = ("GetParameterValues", "GetParameterNames")
# A refused request's body is read away when it is this short (the client can
# go on on the same connection), else the connection closes.
DISCARD_LIMIT = 64 * 1024
DISCARD_TIMEOUT_S = 2.0
# Before closing a connection with unread data: how long, and how much, to read away.
LINGER_S = 1.0
LINGER_BYTES = 256 * 1024


@dataclass
class ConnectionState:
    """What one TCP connection knows: its session and the user it proved to be."""

    peer_ip: str
    session: Session | None = None
    user: str | None = None
    tls: bool = False
    base_url: str = ""  # scheme://Host of its last request
    challenged: bool = False  # it was answered 401 (onboarding: see authentication.py)


@dataclass
class AcsStats:
    sessions_started: int = 0
    sessions_completed: int = 0
    sessions_failed: int = 0
    session_seconds: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class Acs:
    def __init__(
        self, config: AcsConfig, backend: DeviceBackend, queue: RpcQueue, nc: object
    ) -> None:
        self.config = config
        self.backend = backend
        self.queue = queue
        self.nc = nc
        self.js = nc.jetstream()
        self.sessions = SessionTable()
        factory = None
        if config.auth == "onboard":
            factory = FactoryCredentials(config.onboard_credentials, backend.realm)
        self.auth = CpeAuthenticator(backend, factory)
        self.file_server = FileServer(FileStore(backend.registry.db), backend, config)
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.stats = AcsStats()
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task] = set()
        self._connections: set[ServerConnection] = set()
        self.trimmer = Trimmer()  # memory back to the system after a burst of connections
        # Serials that got a synchronous request while in a session: if the
        # session ends without taking it, the CPE is woken again.
        self.rewake: set[str] = set()
        self.waker: Callable[[str], Awaitable[None]] | None = None
        # How many requests each serial may have queued (never fewer than it
        # has): most sessions then end without asking MongoDB.
        self.queue_hint: dict[str, int] = {}
        # The requests this process queued, per serial, in order: when they are
        # all the CPE has, the session sends them without reading MongoDB.
        self.local: dict[str, deque[QueuedRpc]] = {}
        # Synchronous requests being written while their Connection Request
        # is already out: a session of that CPE waits for the write.
        self._writing: dict[str, int] = {}
        self._written = asyncio.Condition()
        self.port = config.port  # the ports listened on, once started
        self.tls_port = config.tls_port
        # What https:// Connection Request URLs are checked with (made at start).
        self.cr_ssl: ssl.SSLContext | None = None
        series.watch(series.ACS_SESSIONS_OPEN, lambda: len(self.sessions))

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        await self.queue.ensure_indexes()
        await asyncio.to_thread(self.file_server.store.ensure_indexes)
        await events.ensure_stream(self.js)
        for serial in await self.queue.queued_serials():
            self.note_queued(serial)
        self.cr_ssl = tls.connection_request_context(self.config)
        if self.config.port is not None:
            self.port = await self._listen("http", self.config.port)
        if self.config.tls_port is not None:
            context = tls.server_context(self.config)
            self.tls_port = await self._listen("https", self.config.tls_port, context)
        self.spawn(self._sweeper())

    async def _listen(self, scheme: str, port: int, context: ssl.SSLContext | None = None) -> int:
        server = await asyncio.start_server(
            self._connection,
            self.config.host,
            port,
            backlog=1024,
            ssl=context,
            ssl_handshake_timeout=tls.HANDSHAKE_TIMEOUT_S if context else None,
        )
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        log.info("ACS listening on %s://%s:%s%s", scheme, self.config.host, port, self.config.path)
        return port

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for http in list(self._connections):  # open keep-alive connections end too
            http.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: object) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _recover_sent(self) -> None:
        """Requests sent longer ago than any session lasts, by an ACS that died
        (restart) before the answer: read-only ones go back to the queue, the
        others are reported failed (the CPE may have applied them: sending them
        again could apply them twice)."""
        for item in await self.queue.stale_sent(self.config.session_timeout * 2):
            if item.request.method in READ_ONLY:
                await self.queue.requeue(item.request_id)
                self.note_queued(item.serial)
            else:
                await self._answer(
                    item,
                    answers.error("500", "the ACS restarted before the CPE answered this request"),
                )

    async def _sweeper(self) -> None:
        last_report = time.monotonic()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            self.trimmer.maybe_trim()
            if time.monotonic() - last_report >= STATS_INTERVAL_S:
                last_report = time.monotonic()
                self._log_stats()
            try:
                for session in self.sessions.expired(self.config.session_timeout):
                    log.info("session of %s timed out", session.serial)
                    await self._end(
                        session,
                        failed=True,
                        reason="the CPE's session timed out before it answered",
                    )
                await self._recover_sent()
                for item in await self.queue.expired():
                    self.forget(item.request_id, item.serial)
                    await self.publish_answer(
                        item.request_id, answers.error("408", "the device did not answer in time")
                    )
            except Exception:  # noqa: BLE001 - the sweeper must outlive a bad round
                log.exception("ACS sweeper")

    # -- connections -------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        http = ServerConnection(reader, writer, self.config.max_body)
        state = ConnectionState(http.peer_ip, tls=writer.get_extra_info("ssl_object") is not None)
        self._connections.add(http)
        linger = False
        try:
            while True:
                try:
                    request = await http.next_head(self.config.session_timeout)
                except TimeoutError:
                    break
                if request is None:
                    break
                early = await self._answer_on_headers(request, state)
                if early is not None:
                    # The body is not wanted: read a short one away, else close.
                    kept = await http.discard_body(DISCARD_LIMIT, DISCARD_TIMEOUT_S)
                    await http.send(early, close=not kept)
                    if not kept:
                        linger = True
                        break
                else:
                    try:
                        await http.read_body(request, self.config.session_timeout)
                    except BodyTooLarge as exc:
                        log.warning("CPE %s: %s: session ended", state.peer_ip, exc)
                        await self._abort(state, f"request too large: {exc}")
                        await http.send(NO_CONTENT, close=True)
                        linger = True
                        break
                    await http.send(await self._handle(request, state))
                if http.must_close:
                    break
        except (HttpError, TimeoutError) as exc:
            log.info("CPE %s: %s", state.peer_ip, exc or "timed out mid-request")
        except (ConnectionError, OSError) as exc:
            log.info("CPE %s hung up: %s", state.peer_ip, exc)
        except Exception:  # noqa: BLE001 - one bad CPE never takes down the ACS
            log.exception("CPE %s: unexpected error; connection closed", state.peer_ip)
            await self._abort(state, "internal error of the ACS")
        except asyncio.CancelledError:
            pass  # the ACS is stopping
        finally:
            self._connections.discard(http)
            await http.close(LINGER_S if linger else 0.0, LINGER_BYTES)
            self.trimmer.connection_closed()

    async def _abort(self, state: ConnectionState, reason: str) -> None:
        if state.session is not None:
            await self._end(state.session, failed=True, reason=reason)
            state.session = None

    async def _answer_on_headers(self, request: Request, state: ConnectionState) -> Response | None:
        """The answer a request gets whatever its body says (its body is then
        not read): anything but a POST to the ACS path, or a client that has
        not authenticated. None: read the body and handle the request."""
        if request.method == "GET" and request.target.startswith(signing.PREFIX):
            return await self.file_server.serve(request, state.peer_ip)
        if request.method == "GET":
            return Response(200, [("Content-Type", "text/plain")], b"oktoscripts ACS\n")
        if request.method != "POST":
            return Response(405, [("Allow", "POST")])
        if urlsplit(request.target).path != self.config.path:
            return Response(404)
        if self.config.auth in ("required", "onboard") and state.user is None:
            state.user, stale = await self.auth.authenticate(
                request, state.peer_ip, state.challenged
            )
            if state.user is None:
                state.challenged = True
                return self.auth.challenge(stale)
        state.base_url = f"{'https' if state.tls else 'http'}://{request.headers.get('host', '')}"
        self._find_session(request, state)
        return None

    def _find_session(self, request: Request, state: ConnectionState) -> None:
        """The session this request belongs to: its connection's, else the one
        its cookie names if the same credential opened it."""
        session = state.session
        if session is not None and session.id in self.sessions.by_id:
            return
        session = self.sessions.from_cookie(request.headers.get("cookie", ""))
        if session is not None and session.user != state.user:
            log.warning(
                "CPE %s: credential %r presented the cookie of the session of %r (opened by "
                "%r): ignored",
                state.peer_ip,
                state.user,
                session.serial,
                session.user,
            )
            session = None
        state.session = session

    async def _handle(self, request: Request, state: ConnectionState) -> Response:
        session = state.session
        if session is not None:
            session.touch()
        if not request.body.strip():
            return await self._next_or_end(session) if session else NO_CONTENT
        try:
            envelope = soap.parse_envelope(request.body, self.config.max_body)
        except SoapError as exc:
            log.warning(
                "CPE %s (%s): unusable message: %s; session ended",
                state.peer_ip,
                session.serial if session else "no session",
                exc,
            )
            await self._abort(state, f"the CPE sent an unusable message: {exc}")
            return NO_CONTENT
        if envelope.rpc == "Inform":
            return await self._inform(envelope, state)
        if session is None:
            log.warning(
                "CPE %s sent %s outside a session (no Inform first)", state.peer_ip, envelope.rpc
            )
            return NO_CONTENT
        if envelope.rpc in soap.RESPONSES:
            return await self._response(session, envelope)
        if envelope.rpc == "TransferComplete":
            return await self._transfer_complete(session, envelope)
        if envelope.rpc == "GetRPCMethods":
            return _xml(soap.get_rpc_methods_response(envelope.cwmp_ns, envelope.cwmp_id or ""))
        log.warning("CPE %s sent an unsupported RPC %s", session.serial, envelope.rpc)
        return _xml(
            soap.soap_fault(
                envelope.cwmp_ns,
                envelope.cwmp_id or "",
                8000,
                f"Method not supported: {envelope.rpc}",
            )
        )

    # -- CPE requests ------------------------------------------------------

    async def _inform(self, envelope: soap.Envelope, state: ConnectionState) -> Response:
        try:
            inform = soap.parse_inform(envelope.element)
        except SoapError as exc:
            log.warning("CPE %s: bad Inform: %s", state.peer_ip, exc)
            await self._abort(state, f"bad Inform: {exc}")
            return NO_CONTENT
        refusal = await self._check_identity(inform.device_id, envelope, state)
        if refusal is not None:
            await self._abort(state, "the CPE's next Inform was refused")
            return refusal
        serial = inform.device_id.serial_number
        kept = events.distinct(inform.events)
        if len(kept) < len(inform.events):
            log.warning(
                "CPE %s (%r): Inform with %d events, %d of them distinct: only those kept "
                "(at most %d)",
                state.peer_ip,
                serial,
                len(inform.events),
                len(kept),
                events.MAX_EVENTS_PER_INFORM,
            )
            inform.events = kept
        if state.session is not None:  # a new Inform ends the session it interrupts
            await self._end(state.session, failed=True, reason="the CPE started a new session")
        if self.config.unknown_cpe == "reject" and not await self.backend.exists(serial):
            log.warning("Inform from unknown CPE %r refused (unknown CPEs: reject)", serial)
            return _xml(
                soap.soap_fault(
                    envelope.cwmp_ns, envelope.cwmp_id or "", 8001, "Request denied: unknown device"
                )
            )
        session = Session(
            serial=serial,
            cwmp_ns=envelope.cwmp_ns,
            user=state.user,
            event_numbers={e.number for e in inform.events},
            base_url=self.config.file_url or state.base_url,
        )
        # The device write and the events are both stored before the InformResponse.
        session.new_device, _ = await asyncio.gather(
            self.backend.record_inform(inform, state.peer_ip, envelope.cwmp_ns),
            events.publish(self.js, serial, inform.events),
        )
        if session.new_device:
            await self._recount_queue(serial)
        session.provision = await self.backend.provisioning(
            serial,
            paths.data_model_of(inform.parameters),
            session.new_device,
            onboard_oui=inform.device_id.oui if state.user == FACTORY_USER else None,
            bootstrap="0" in session.event_numbers,
        )
        replaced = self.sessions.add(session)
        if replaced is not None:
            await self._end(replaced, failed=True, reason="the CPE started a new session")
        state.session = session
        self.stats.sessions_started += 1
        series.acs_inform()
        series.acs_session_started()
        body = soap.inform_response(envelope.cwmp_ns, envelope.cwmp_id or soap.new_id())
        return Response(
            200, [*XML_HEADERS, ("Set-Cookie", f"{COOKIE_NAME}={session.id}; Path=/")], body
        )

    async def _check_identity(
        self, device: soap.DeviceId, envelope: soap.Envelope, state: ConnectionState
    ) -> Response | None:
        """Refuse an Inform whose DeviceId is malformed (SOAP Fault 8003) or that
        the authenticated credential may not speak for (401, connection closed)."""
        problem = cwmp_device_id_problem(device.oui, device.product_class, device.serial_number)
        if problem is not None:
            log.warning("CPE %s: Inform refused: invalid DeviceId: %s", state.peer_ip, problem)
            fault = soap.soap_fault(
                envelope.cwmp_ns, envelope.cwmp_id or "", 8003, f"Invalid arguments: {problem}"
            )
            return _xml(fault)
        if state.user == FACTORY_USER:
            return await self._check_onboarding(device, state)
        if state.user is None or await self.backend.speaks_for(state.user, device):
            return None
        log.warning(
            "CPE %s: credential %r claimed to be OUI %r ProductClass %r SerialNumber %r, "
            "a device it does not speak for: refused",
            state.peer_ip,
            state.user,
            device.oui,
            device.product_class,
            device.serial_number,
        )
        state.user = None
        refusal = self.auth.challenge()
        refusal.headers.append(("Connection", "close"))
        return refusal

    async def _check_onboarding(
        self, device: soap.DeviceId, state: ConnectionState
    ) -> Response | None:
        """A factory credential is good for a DeviceId without a credential of its
        own only: a CPE that was given one and still presents the factory one is
        refused, logged, and the refusal recorded on its device record."""
        if not await self.backend.has_own_credential(device):
            return None
        log.warning(
            "CPE %s: %r (OUI %r) presented the factory credential, but it was given a "
            "credential of its own: refused (the CPE did not take its new ACS password?)",
            state.peer_ip,
            device.serial_number,
            device.oui,
        )
        self.spawn(self.backend.factory_refused(device.serial_number))
        state.user = None
        refusal = self.auth.challenge()
        refusal.headers.append(("Connection", "close"))
        return refusal

    async def _transfer_complete(self, session: Session, envelope: soap.Envelope) -> Response:
        tc = soap.parse_transfer_complete(envelope.element)
        log.info(
            "TransferComplete from %s: command key %r, fault %s",
            session.serial,
            tc.command_key,
            tc.fault_code,
        )
        # Some CPEs send TransferComplete in a later session without the
        # "7 TRANSFER COMPLETE" event: listeners still get one.
        if "7" not in session.event_numbers:
            await events.publish(
                self.js, session.serial, [soap.EventStruct("7 TRANSFER COMPLETE", tc.command_key)]
            )
        # A script waiting on the Download/Upload (day2.py) gets this as its answer.
        item = await self.queue.take_transfer(session.serial, tc.command_key)
        if item is not None:
            await self._answer(item, answers.from_transfer_complete(tc), session)
        return _xml(soap.transfer_complete_response(envelope.cwmp_ns, envelope.cwmp_id or ""))

    # -- ACS requests and the CPE's responses -------------------------------

    async def _next_or_end(self, session: Session) -> Response:
        """Send the next thing the session has for the CPE, or end it with 204."""
        if session.pending is not None:
            # An empty POST while we wait: the CPE will not answer that request.
            await self._fail_pending(
                session, "500", "the CPE did not answer the request (empty POST)"
            )
        if session.provision:
            request, purpose = session.provision.pop(0)
            return self._send(session, Pending(request, purpose=purpose))
        if session.serial in self._writing:
            await self._wait_for_writes(session.serial)
        item = self._take_local(session)
        before = self.queue_hint.get(session.serial, 0)
        if item is None and before:
            item = await self.queue.take_next(session.serial, self.owner)
            if item is not None:
                self.forget(item.request_id, item.serial)
            # Requests noted while we looked stay counted.
            left = self.queue_hint.get(session.serial, 0) - (1 if item else before)
            if left > 0:
                self.queue_hint[session.serial] = left
            else:
                self.queue_hint.pop(session.serial, None)
        if item is not None:
            request = await self.file_server.resolve(item.request, session)
            if isinstance(request, dict):  # a stored file that does not exist
                await self._answer(item, request, session)
                return await self._next_or_end(session)
            return self._send(session, Pending(request, item=item))
        if session.writes:  # what the session changed is stored before the final 204
            await asyncio.gather(*session.writes, return_exceptions=True)
            session.writes.clear()
        await self._end(session)
        return NO_CONTENT

    def _take_local(self, session: Session) -> QueuedRpc | None:
        """The next request from memory, when every request queued for this CPE
        is one this process queued (so none older waits in MongoDB)."""
        serial = session.serial
        held = self.local.get(serial)
        if not held or self.queue_hint.get(serial, 0) != len(held):
            return None
        now = datetime.now(UTC)
        while held:
            item = held.popleft()
            self._uncount(serial)
            if item.expires_at > now:
                session.writes.append(self.spawn(self.queue.mark_sent(item.request_id, self.owner)))
                break
        else:
            item = None
        if not held:
            self.local.pop(serial, None)
        return item

    async def _recount_queue(self, serial: str) -> None:
        """A device new to the registry: requests this process remembers for
        that serial belong to a deleted device (deleting one deletes its
        queue entries), so they go; the hint becomes what is queued now, plus
        what was noted meanwhile (counting one twice costs a lookup, missing
        one would leave a request waiting)."""
        self.local.pop(serial, None)
        before = self.queue_hint.get(serial, 0)
        queued = await self.queue.count_queued(serial)
        hint = queued + self.queue_hint.get(serial, 0) - before
        if hint > 0:
            self.queue_hint[serial] = hint
        else:
            self.queue_hint.pop(serial, None)

    def _uncount(self, serial: str) -> None:
        left = self.queue_hint.get(serial, 0) - 1
        if left > 0:
            self.queue_hint[serial] = left
        else:
            self.queue_hint.pop(serial, None)

    def hold(self, item: QueuedRpc) -> None:
        """Remember a request this process just queued (see _take_local), in
        queue order: concurrent writes may finish out of order."""
        held = self.local.setdefault(item.serial, deque())
        held.append(item)
        if len(held) > 1 and held[-2].order > item.order:
            self.local[item.serial] = deque(sorted(held, key=lambda i: i.order))

    def forget(self, request_id: str, serial: str) -> None:
        """A request left the queue (taken, cancelled, expired)."""
        held = self.local.get(serial)
        if held:
            for item in held:
                if item.request_id == request_id:
                    held.remove(item)
                    break
            if not held:
                self.local.pop(serial, None)

    def _send(self, session: Session, pending: Pending) -> Response:
        session.pending = pending
        return _xml(soap.build_request(pending.request, session.cwmp_ns, soap.new_id()))

    async def _response(self, session: Session, envelope: soap.Envelope) -> Response:
        pending = session.pending
        if pending is None:
            log.warning("CPE %s sent %s but no request was waiting", session.serial, envelope.rpc)
            return await self._next_or_end(session)
        try:
            result = soap.parse_response(envelope)
        except SoapError as exc:
            result = soap.CwmpFault("500", f"unusable response: {exc}")
        session.pending = None
        if pending.item is None:
            await self._provisioned(session, pending, result)
            return await self._next_or_end(session)
        follow_up = self._expand(pending, envelope, result)
        if follow_up is not None:
            return self._send(session, follow_up)
        if day2.waits_for_transfer(pending.request.method, result):
            # Answered by the TransferComplete, in this session or a later one.
            write = self.spawn(
                self.queue.await_transfer(
                    pending.item.request_id, pending.request.args.get("CommandKey", "")
                )
            )
            session.writes.append(write)
            return await self._next_or_end(session)
        await self._answer(pending.item, self._final_answer(pending, envelope, result), session)
        return await self._next_or_end(session)

    def _final_answer(self, pending: Pending, envelope: soap.Envelope, result: object) -> dict:
        exp = pending.expansion
        if exp is None:
            return answers.from_response(
                pending.request.method,
                envelope.rpc,
                result,
                envelope.raw,
                details=pending.request.details,
            )
        if isinstance(result, soap.CwmpFault) or exp.partials:
            return answers.from_fault(exp.fault, exp.raw)
        return answers.from_response(
            "GetParameterValues",
            envelope.rpc,
            result,
            envelope.raw,
            details=pending.request.details,
        )

    def _expand(self, pending: Pending, envelope: soap.Envelope, result: object) -> Pending | None:
        """Some CPEs fault a GetParameterValues on a partial path: ask their names
        with GetParameterNames, then the leaves by name."""
        request, exp = pending.request, pending.expansion
        if exp is None:
            partials = [n for n in request.names if n.endswith(".")]
            if (
                request.method != "GetParameterValues"
                or not partials
                or not isinstance(result, soap.CwmpFault)
            ):
                return None
            exp = Expansion(
                partials, [n for n in request.names if not n.endswith(".")], result, envelope.raw
            )
        elif pending.request.method == "GetParameterNames":
            if isinstance(result, soap.CwmpFault):
                return None  # the original fault stands
            exp.leaves += [n for n in result if not n.endswith(".")]
            exp.partials.pop(0)
        else:
            return None
        if exp.partials:
            step = soap.RpcRequest("GetParameterNames", path=exp.partials[0], next_level=False)
        else:
            step = soap.RpcRequest("GetParameterValues", names=exp.full_names + exp.leaves)
        return Pending(step, item=pending.item, expansion=exp)

    async def _provisioned(self, session: Session, pending: Pending, result: object) -> None:
        if isinstance(result, soap.CwmpFault):
            log.warning(
                "CPE %s refused %s (%s): %s",
                session.serial,
                pending.purpose,
                result.fault_code,
                result.fault_string,
            )
        await self.backend.provisioned(session.serial, pending.purpose, pending.request, result)

    # -- answers and session ends -----------------------------------------

    async def _answer(self, item: QueuedRpc, answer: dict, session: Session | None = None) -> None:
        # The requester gets the answer first; the record goes meanwhile, and
        # the session's final 204 waits for that write.
        await self.publish_answer(item.request_id, answer)
        record = (
            self.queue.answered(item.request_id, answer)
            if item.keep
            else (self.queue.done(item.request_id))
        )
        write = self.spawn(record)
        if session is not None:
            session.writes.append(write)

    async def publish_answer(self, request_id: str, answer: dict) -> None:
        await self.nc.publish(subjects.cwmp_answer(request_id), json.dumps(answer).encode())

    async def _fail_pending(self, session: Session, code: str, message: str) -> None:
        pending, session.pending = session.pending, None
        if pending is not None and pending.item is not None:
            await self._answer(pending.item, answers.error(code, message))

    async def _end(self, session: Session, failed: bool = False, reason: str = "") -> None:
        if self.sessions.by_id.get(session.id) is session:
            self.sessions.remove(session)
            if session.serial in self.rewake and self.waker is not None:
                self.rewake.discard(session.serial)
                self.spawn(self.waker(session.serial))
            series.acs_session_ended(failed)
            if failed:
                self.stats.sessions_failed += 1
            else:
                self.stats.sessions_completed += 1
                self.stats.session_seconds.append(time.monotonic() - session.started)
        if session.pending is not None:
            await self._fail_pending(
                session, "408" if "timed out" in reason else "500", reason or "the session ended"
            )

    @contextlib.asynccontextmanager
    async def writing(self, serial: str) -> AsyncIterator[None]:
        """Around the write of a request whose CPE may call before it is done."""
        self._writing[serial] = self._writing.get(serial, 0) + 1
        try:
            yield
        finally:
            left = self._writing.pop(serial) - 1
            if left:
                self._writing[serial] = left
            async with self._written:
                self._written.notify_all()

    async def _wait_for_writes(self, serial: str) -> None:
        try:
            async with self._written:
                await asyncio.wait_for(
                    self._written.wait_for(lambda: serial not in self._writing), 5.0
                )
        except TimeoutError:
            log.warning("queue write for %s still not done after 5 s", serial)

    def _log_stats(self) -> None:
        stats = self.stats
        times = sorted(stats.session_seconds)
        median = f"{times[len(times) // 2] * 1000:.0f} ms" if times else "-"
        log.info(
            "sessions: %d started, %d completed (median %s), %d failed; %d open",
            stats.sessions_started,
            stats.sessions_completed,
            median,
            stats.sessions_failed,
            len(self.sessions),
        )

    def note_queued(self, serial: str) -> None:
        """A request for ``serial`` went into the queue (here or in another ACS)."""
        self.queue_hint[serial] = self.queue_hint.get(serial, 0) + 1

    def in_session(self, serial: str) -> bool:
        return serial in self.sessions.by_serial


def _xml(body: bytes) -> Response:
    return Response(200, list(XML_HEADERS), body)
