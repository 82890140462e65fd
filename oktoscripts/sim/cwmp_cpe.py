"""Simulated TR-069 CPEs: many in one asyncio process, over real sockets.

Each CPE holds a TR-098 or TR-181 data model, opens sessions with the ACS
(Inform with the right events, then the ACS's RPCs until a 204),
authenticates with Basic or Digest, informs periodically, and answers
Connection Requests (with Digest, using the connection-request credentials
the ACS set in its data model). One HTTP server serves the Connection
Requests of the whole fleet, at ``http://host:port/<serial>``.

Each CPE has a credential of its own, as TR-069 3.4.4 recommends: the
username ``OUI-SerialNumber`` and a password derived from a fleet secret
(``FleetCredentials``); the platform must know them (``provision``). An
https:// ACS URL is reached over TLS, trusting the CA file of the options.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import ssl
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from oktoscripts.cwmp.http11 import ClientConnection, HttpError, Response, ServerConnection
from oktoscripts.cwmp.httpauth import (
    NonceIssuer,
    answer_challenge,
    basic_header,
    challenge,
    check_digest,
    ha1,
    parse_auth_params,
    split_scheme,
)
from oktoscripts.cwmp.xmlsafe import UnsafeXml, child, children, local_name, namespace, parse, text
from oktoscripts.devices.identifiers import tr069_usernames
from oktoscripts.sim import cwmp_day2, datamodel
from oktoscripts.sim.datamodel import CwmpFault

log = logging.getLogger(__name__)

NS_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CR_REALM = "oktosim-cpe"
MAX_ROUNDS = 64  # requests in one session before the CPE gives up on a looping ACS


class FleetCredentials:
    """Per-CPE credentials derived from one secret: the username TR-069 3.4.4
    recommends (``OUI-SerialNumber``), which the ACS binds to that CPE alone,
    and a password no other CPE's credential reveals."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def of(self, oui: str, serial: str) -> tuple[str, str]:
        username = tr069_usernames(oui, "", serial)[1]
        digest = hmac.new(self.secret, username.encode(), hashlib.sha256).digest()
        return username, base64.urlsafe_b64encode(digest[:18]).decode()


@dataclass
class CpeOptions:
    acs_url: str
    username: str = ""  # one credential for every CPE, when ``credentials`` is None
    password: str = ""
    credentials: FleetCredentials | None = None  # a credential per CPE
    ca_file: str | None = None  # trusted for an https:// ACS URL (None: the system's CAs)
    auth: str = "digest"  # "basic" (pre-emptive, every request) | "digest" | "none"
    quirk_digest_nc_always_1: bool = False  # reuse the nonce with nc=00000001 every time
    cwmp_minor: int | None = None  # 0..4; None: varies across the fleet
    data_model: str | None = None  # "TR-098" | "TR-181"; None: alternates
    periodic_interval: int = 300
    raw_cookie: bool = False  # send the Set-Cookie back with its attributes
    quirk_no_partial_gpv: bool = False
    # Answer Connection Requests with 200 but never call (a CPE stuck behind a
    # NAT rule or a broken firmware): what the ACS must not wait on for ever.
    quirk_ignore_connection_requests: bool = False
    # Keep logging in with the factory credential after the ACS set another one.
    quirk_keeps_factory_credential: bool = False
    # Fault a SetParameterValues of ManagementServer.Username/Password (9001).
    quirk_refuses_acs_credential: bool = False
    quirk_download_fails: bool = False  # every Download ends with TransferComplete fault 9010
    download_s: float = 0.05  # how long a download or upload takes (cwmp_day2.py)
    manufacturer: str = "Oktosim"
    oui: str = "00A0B1"


@dataclass
class FleetStats:
    sessions_ok: int = 0
    sessions_failed: int = 0
    connection_requests: int = 0
    durations: deque = field(default_factory=lambda: deque(maxlen=200_000))


class SimulatedCpe:
    def __init__(
        self, serial: str, index: int, options: CpeOptions, cr_base: str, stats: FleetStats
    ) -> None:
        self.serial = serial
        self.options = options
        self.stats = stats
        self.username, self.password = (
            options.credentials.of(options.oui, serial)
            if options.credentials is not None
            else (options.username, options.password)
        )
        dm_name = options.data_model or (datamodel.TR181 if index % 2 == 0 else datamodel.TR098)
        self.cwmp_ns = "urn:dslforum-org:cwmp-1-" + str(
            options.cwmp_minor if options.cwmp_minor is not None else index % 5
        )
        self.dm = datamodel.build(
            dm_name,
            serial=serial,
            oui=options.oui,
            manufacturer=options.manufacturer,
            product_class="IGD" if dm_name == datamodel.TR098 else "Router",
            model="Oktosim " + ("G1" if dm_name == datamodel.TR098 else "R1"),
            software_version="1.0." + str(index % 7),
            index=index,
            acs_url=options.acs_url,
            cr_url=f"{cr_base}/{serial}",
            periodic_interval=options.periodic_interval,
        )
        self.dm.quirk_no_partial_gpv = options.quirk_no_partial_gpv
        self.events: list[tuple[str, str]] = [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
        self.transfers: list[cwmp_day2.Transfer] = []  # TransferCompletes to send
        self.factory_credential = (self.username, self.password)  # what a factory reset restores
        # Notification attributes the ACS set (SetParameterAttributes); unset: active.
        self.attributes: dict[str, int] = {}
        self.after_session: list = []  # what the session's RPCs do once it ended
        self.rebooted = 0
        self.factory_resets = 0
        self._background: set[asyncio.Task] = set()
        self.changed: set[str] = set()
        # Changes applied (SetParameterValues, AddObject, DeleteObject) by
        # ParameterKey: what a test counts to know a change was made exactly once.
        self.applied: Counter[str] = Counter()
        self.started = time.monotonic()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._digest_challenge = ""
        self._nonce_count = 0  # requests answered with the current challenge's nonce
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.last_session_ok: bool | None = None
        self.in_session = False
        self._next_credential: tuple[str, str] | None = None  # set by the ACS, used next session

    # -- what makes the CPE call ------------------------------------------

    def add_event(self, code: str, command_key: str = "") -> None:
        if (code, command_key) not in self.events:
            self.events.append((code, command_key))
        self._wake.set()

    def wake(self) -> None:
        """Inform now, as if the periodic interval had passed (2 PERIODIC)."""
        self._wake.set()

    def connection_request(self) -> None:
        self.add_event("6 CONNECTION REQUEST")

    def change_value(self, name: str, value: str) -> None:
        """A change made on the device itself (not by the ACS): VALUE CHANGE at
        once (notification 2, the default here), at the next Inform (1), or none (0)."""
        self.dm.params[name].value = value
        notification = self.notification(name)
        if notification == 0:
            return
        self.changed.add(name)
        if notification == 2:
            self.add_event("4 VALUE CHANGE")
        elif ("4 VALUE CHANGE", "") not in self.events:
            self.events.append(("4 VALUE CHANGE", ""))  # passive: no session of its own

    def notification(self, name: str) -> int:
        return self.attributes.get(name, 2)

    def spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def complete_transfer(self, command_key: str) -> None:
        self.transfers.append(cwmp_day2.Transfer(command_key))
        self.add_event("7 TRANSFER COMPLETE")
        self.add_event("M Download", command_key)

    def start(self, delay: float = 0.0) -> None:
        self._task = asyncio.ensure_future(self._run(delay))

    async def stop(self) -> None:
        self._stopping = True
        for background in list(self._background):
            background.cancel()
        task = self._task
        # asyncio.wait_for in Python 3.11 can swallow a cancellation that
        # arrives as its wait ends: cancel until the task is really done.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=0.5)

    async def _run(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        failures = 0
        while not self._stopping:
            if not self.events:
                self.events.append(("2 PERIODIC", ""))
            ok = await self.session()
            failures = 0 if ok else failures + 1
            wait = (
                self.periodic_interval()
                if ok
                else min(60.0, 2.0 * 2 ** min(failures, 5)) * random.uniform(0.5, 1.0)
            )
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    def periodic_interval(self) -> float:
        try:
            return max(
                1.0, float(self.dm.value(self.dm.root + "ManagementServer.PeriodicInformInterval"))
            )
        except ValueError:
            return 300.0

    # -- one session ---------------------------------------------------------

    async def session(self) -> bool:
        """Inform, then serve the ACS until it answers 204. True on success."""
        async with self._lock:
            self._wake.clear()
            self.in_session = True
            begin = time.monotonic()
            events = list(self.events)
            client = ClientConnection(
                self.options.acs_url, timeout=30, ssl_context=_acs_ssl(self.options)
            )
            try:
                ok = await self._converse(client, events)
            except (HttpError, UnsafeXml, OSError) as exc:
                log.info("CPE %s: session failed: %s", self.serial, exc)
                ok = False
            finally:
                await client.close()
                self.in_session = False
            if ok and self._next_credential is not None:
                if not self.options.quirk_keeps_factory_credential:
                    self.username, self.password = self._next_credential
                self._next_credential = None
            effects, self.after_session = self.after_session, []
            if ok:
                self.events = [e for e in self.events if e not in events]
                for effect in effects:  # a reboot, a download... once the session is over
                    effect()
                self.changed.clear()
                self.stats.sessions_ok += 1
                self.stats.durations.append(time.monotonic() - begin)
            else:
                self.stats.sessions_failed += 1
            self.last_session_ok = ok
            return ok

    async def _converse(self, client: ClientConnection, events: list[tuple[str, str]]) -> bool:
        cookie = ""
        body = self._inform(events)
        for _ in range(MAX_ROUNDS):
            response = await self._post(client, body, cookie)
            if response.status == 204:
                return True
            if response.status != 200:
                log.info("CPE %s: ACS answered HTTP %s", self.serial, response.status)
                return False
            set_cookie = response.header("Set-Cookie")
            if set_cookie:
                cookie = set_cookie if self.options.raw_cookie else set_cookie.split(";")[0]
            if not response.body.strip():
                body = b""
                continue
            body = self._reply(parse(response.body))
            if body is None:
                return False
        return False

    async def _post(self, client: ClientConnection, body: bytes, cookie: str) -> Response:
        for _ in range(2):
            headers = [("Content-Type", 'text/xml; charset="utf-8"')]
            if body:
                headers.append(("SOAPAction", '""'))
            if cookie:
                headers.append(("Cookie", cookie))
            auth = self._authorization(client.path)
            if auth:
                headers.append(("Authorization", auth))
            response = await client.request("POST", headers, body)
            if response.status != 401 or self.options.auth != "digest":
                return response
            self._digest_challenge = response.header("WWW-Authenticate")
            self._nonce_count = 0
        return response

    def _authorization(self, uri: str) -> str:
        opts = self.options
        if opts.auth == "basic":
            return basic_header(self.username, self.password)
        if opts.auth == "digest" and self._digest_challenge:
            # The nonce of the last challenge while the ACS takes it, the nonce
            # count going up on each use (RFC 7616); or, like some CPEs, nc=1 always.
            self._nonce_count = 1 if opts.quirk_digest_nc_always_1 else self._nonce_count + 1
            return (
                answer_challenge(
                    self._digest_challenge,
                    self.username,
                    self.password,
                    "POST",
                    uri,
                    nc=self._nonce_count,
                )
                or ""
            )
        return ""

    # -- messages ---------------------------------------------------------------

    def _envelope(self, cwmp_id: str, body: str, ns: str | None = None) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{NS_ENV}" '
            'xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xmlns:cwmp="{ns or self.cwmp_ns}"><SOAP-ENV:Header>'
            f'<cwmp:ID SOAP-ENV:mustUnderstand="1">{escape(cwmp_id)}</cwmp:ID>'
            f"</SOAP-ENV:Header><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
        ).encode()

    def _inform(self, events: list[tuple[str, str]]) -> bytes:
        dm = self.dm
        uptime = dm.params.get(dm.root + "DeviceInfo.UpTime")
        if uptime is not None:  # a device twin has only what its original had
            uptime.value = str(int(time.monotonic() - self.started))
        names = datamodel.inform_parameters(dm) + sorted(self.changed)
        values = "".join(
            f"<ParameterValueStruct><Name>{n}</Name>"
            f'<Value xsi:type="xsd:{dm.params[n].type}">{escape(dm.params[n].value)}</Value>'
            "</ParameterValueStruct>"
            for n in dict.fromkeys(names)
            if n in dm.params
        )
        event_xml = "".join(
            f"<EventStruct><EventCode>{escape(c)}</EventCode>"
            f"<CommandKey>{escape(k)}</CommandKey></EventStruct>"
            for c, k in events
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._envelope(
            f"inform-{int(time.time() * 1000) % 10**9}",
            (
                "<cwmp:Inform><DeviceId>"
                f"<Manufacturer>{escape(self.options.manufacturer)}</Manufacturer>"
                f"<OUI>{self.options.oui}</OUI>"
                f"<ProductClass>{escape(dm.value(dm.root + 'DeviceInfo.ProductClass'))}"
                f"</ProductClass><SerialNumber>{escape(self.serial)}</SerialNumber></DeviceId>"
                f'<Event SOAP-ENC:arrayType="cwmp:EventStruct[{len(events)}]">{event_xml}</Event>'
                f"<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>{now}</CurrentTime>"
                "<RetryCount>0</RetryCount>"
                f'<ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[{len(names)}]">'
                f"{values}</ParameterList></cwmp:Inform>"
            ),
        )

    def _reply(self, root: object) -> bytes | None:
        """What the CPE posts next after the ACS's message ``root``."""
        body = child(root, "Body")
        element = (
            next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        )
        if element is None:
            return None
        header = child(root, "Header")
        cwmp_id = text(header, "ID") if header is not None else ""
        ns = namespace(element) or self.cwmp_ns
        rpc = local_name(element)
        if rpc in ("InformResponse", "TransferCompleteResponse"):
            if self.transfers:
                done = self.transfers.pop(0)
                return self._envelope(
                    f"tc-{len(self.transfers)}",
                    (
                        f"<cwmp:TransferComplete><CommandKey>{escape(done.command_key)}"
                        f"</CommandKey><FaultStruct><FaultCode>{done.fault_code}</FaultCode>"
                        f"<FaultString>{escape(done.fault_string)}</FaultString>"
                        "</FaultStruct><StartTime>0001-01-01T00:00:00Z</StartTime>"
                        "<CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:TransferComplete>"
                    ),
                    ns,
                )
            return b""
        if rpc == "Fault":
            log.info("CPE %s: the ACS answered with a SOAP Fault", self.serial)
            return None
        try:
            return self._envelope(cwmp_id, self._execute(rpc, element), ns)
        except CwmpFault as fault:
            return self._envelope(cwmp_id, _fault_xml(fault), ns)

    def _execute(self, rpc: str, el: object) -> str:
        dm = self.dm
        key = text(el, "ParameterKey")
        if rpc == "GetParameterValues":
            names_el = child(el, "ParameterNames")
            # A name without children is its text (the common case, and cheap);
            # text() checks the others for entity references.
            names = (
                [(s.text or "").strip() if len(s) == 0 else text(s) for s in names_el]
                if names_el is not None
                else []
            )
            found = dm.get_values(names)
            structs = "".join(
                f'<ParameterValueStruct><Name>{n}</Name><Value xsi:type="xsd:{t}">'
                f"{escape(v)}</Value></ParameterValueStruct>"
                for n, v, t in found
            )
            return (
                "<cwmp:GetParameterValuesResponse><ParameterList SOAP-ENC:arrayType="
                f'"cwmp:ParameterValueStruct[{len(found)}]">{structs}</ParameterList>'
                "</cwmp:GetParameterValuesResponse>"
            )
        if rpc == "SetParameterValues":
            plist = child(el, "ParameterList")
            values = []
            for pv in children(plist, "ParameterValueStruct") if plist is not None else []:
                value_el = child(pv, "Value")
                xsd = (
                    (
                        value_el.get("{http://www.w3.org/2001/XMLSchema-instance}type") or ""
                    ).rpartition(":")[2]
                    if value_el is not None
                    else ""
                )
                values.append((text(pv, "Name"), text(value_el, strip=False), xsd))
            if not values:
                raise CwmpFault("9003", "Empty ParameterList")
            ms = dm.root + "ManagementServer."
            if self.options.quirk_refuses_acs_credential and any(
                name in (ms + "Username", ms + "Password") for name, _, _ in values
            ):
                raise CwmpFault("9001", "Request denied: the ACS credential is locked")
            dm.set_values(values)
            self._parameter_key(key)
            if any(name in (ms + "Username", ms + "Password") for name, _, _ in values):
                # A new ACS credential: used from the next session on, as CPEs do.
                self._next_credential = (dm.value(ms + "Username"), dm.value(ms + "Password"))
            return (
                "<cwmp:SetParameterValuesResponse><Status>0</Status>"
                "</cwmp:SetParameterValuesResponse>"
            )
        if rpc == "AddObject":
            number = dm.add_object(text(el, "ObjectName"))
            self._parameter_key(key)
            return (
                f"<cwmp:AddObjectResponse><InstanceNumber>{number}</InstanceNumber>"
                "<Status>0</Status></cwmp:AddObjectResponse>"
            )
        if rpc == "DeleteObject":
            dm.delete_object(text(el, "ObjectName"))
            self._parameter_key(key)
            return "<cwmp:DeleteObjectResponse><Status>0</Status></cwmp:DeleteObjectResponse>"
        if rpc == "GetParameterNames":
            next_level = text(el, "NextLevel").lower() in ("1", "true")
            infos = dm.get_names(text(el, "ParameterPath"), next_level)
            structs = "".join(
                f"<ParameterInfoStruct><Name>{n}</Name><Writable>{int(w)}</Writable>"
                "</ParameterInfoStruct>"
                for n, w in infos
            )
            return (
                "<cwmp:GetParameterNamesResponse><ParameterList SOAP-ENC:arrayType="
                f'"cwmp:ParameterInfoStruct[{len(infos)}]">{structs}</ParameterList>'
                "</cwmp:GetParameterNamesResponse>"
            )
        if rpc == "GetRPCMethods":
            methods = [
                "GetRPCMethods",
                "GetParameterValues",
                "SetParameterValues",
                "GetParameterNames",
                "AddObject",
                "DeleteObject",
                *cwmp_day2.METHODS,
            ]
            items = "".join(f"<string>{m}</string>" for m in methods)
            return (
                f'<cwmp:GetRPCMethodsResponse><MethodList SOAP-ENC:arrayType="xsd:string'
                f'[{len(methods)}]">{items}</MethodList></cwmp:GetRPCMethodsResponse>'
            )
        if rpc in cwmp_day2.METHODS:
            return cwmp_day2.execute(self, rpc, el)
        raise CwmpFault("9000", f"Method not supported: {rpc}")

    def _parameter_key(self, key: str) -> None:
        parameter_key = self.dm.params.get(self.dm.root + "ManagementServer.ParameterKey")
        if parameter_key is not None:
            parameter_key.value = key
        self.applied[key] += 1

    # -- connection requests ------------------------------------------------------

    def cr_credentials(self) -> tuple[str, str]:
        ms = self.dm.root + "ManagementServer."
        return (
            self.dm.value(ms + "ConnectionRequestUsername"),
            self.dm.value(ms + "ConnectionRequestPassword"),
        )


_contexts: dict[str | None, ssl.SSLContext] = {}


def _acs_ssl(options: CpeOptions) -> ssl.SSLContext | None:
    """The TLS context for an https:// ACS URL (one per CA file, shared by the fleet)."""
    if not options.acs_url.startswith("https:"):
        return None
    context = _contexts.get(options.ca_file)
    if context is None:
        context = _contexts[options.ca_file] = ssl.create_default_context(cafile=options.ca_file)
    return context


def _fault_xml(fault: CwmpFault) -> str:
    details = "".join(
        f"<SetParameterValuesFault><ParameterName>{escape(n)}</ParameterName>"
        f"<FaultCode>{c}</FaultCode><FaultString>{escape(s)}</FaultString>"
        "</SetParameterValuesFault>"
        for n, c, s in fault.parameter_faults
    )
    return (
        "<SOAP-ENV:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>"
        f"<detail><cwmp:Fault><FaultCode>{fault.code}</FaultCode>"
        f"<FaultString>{escape(fault.message)}</FaultString>{details}</cwmp:Fault></detail>"
        "</SOAP-ENV:Fault>"
    )


class ConnectionRequestServer:
    """The Connection Request endpoint of every CPE of a fleet: GET /<serial>.
    A CPE whose ConnectionRequestUsername is set requires Digest; one without
    needs no authentication."""

    def __init__(
        self,
        fleet: CpeFleet,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.fleet = fleet
        self.host, self.port = host, port
        self.ssl = ssl_context  # served over HTTPS with it when set
        self.nonces = NonceIssuer(lifetime=300)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, ssl=self.ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    @property
    def base_url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        http = ServerConnection(reader, writer, max_body=4096)
        try:
            while True:
                request = await http.next_request(timeout=10)
                if request is None:
                    break
                await http.send(self._answer(request.method, request.target, request.headers))
                if http.must_close:
                    break
        except (HttpError, TimeoutError, ConnectionError, OSError):
            pass
        finally:
            await http.close()

    def _answer(self, method: str, target: str, headers: dict[str, str]) -> Response:
        serial = unquote(urlsplit(target).path.lstrip("/"))
        cpe = self.fleet.by_serial.get(serial)
        if method != "GET" or cpe is None:
            return Response(404)
        username, password = cpe.cr_credentials()
        if username:
            scheme, rest = split_scheme(headers.get("authorization", ""))
            params = parse_auth_params(rest) if scheme == "digest" else {}
            if not (
                params
                and params.get("username") == username
                and self.nonces.valid(params.get("nonce", ""))
                and check_digest(params, method, ha1(username, CR_REALM, password))
            ):
                return Response(
                    401, [("WWW-Authenticate", challenge(CR_REALM, self.nonces.issue()))]
                )
        self.fleet.stats.connection_requests += 1
        if not cpe.options.quirk_ignore_connection_requests:
            cpe.connection_request()
        return Response(200)


class CpeFleet:
    """``count`` simulated CPEs with serials ``<prefix><index:06d>``."""

    def __init__(
        self,
        count: int,
        options: CpeOptions,
        *,
        prefix: str = "OKTOSIM",
        first_index: int = 0,
        cr_host: str = "127.0.0.1",
        cr_port: int = 0,
        cr_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.count, self.options, self.prefix = count, options, prefix
        self.first_index = first_index
        self.stats = FleetStats()
        self.cr_server = ConnectionRequestServer(self, cr_host, cr_port, cr_ssl)
        self.cpes: list[SimulatedCpe] = []
        self.by_serial: dict[str, SimulatedCpe] = {}

    @property
    def serials(self) -> list[str]:
        return [
            f"{self.prefix}{i:06d}" for i in range(self.first_index, self.first_index + self.count)
        ]

    def credentials(self) -> list[tuple[str, str]]:
        """(username, password) of each CPE, for the platform's credential store."""
        creds = self.options.credentials
        if creds is None:
            return [(self.options.username, self.options.password)]
        return [creds.of(self.options.oui, serial) for serial in self.serials]

    async def start(self, arrivals_per_s: float | None = None, run: bool = True) -> None:
        """Create the CPEs; with ``run``, start each (first Inform, then periodic),
        spread over time at ``arrivals_per_s`` (all at once when None)."""
        await self.cr_server.start()
        for i, serial in enumerate(self.serials, start=self.first_index):
            cpe = SimulatedCpe(serial, i, self.options, self.cr_server.base_url, self.stats)
            self.cpes.append(cpe)
            self.by_serial[cpe.serial] = cpe
        if run:
            for n, cpe in enumerate(self.cpes):
                cpe.start(n / arrivals_per_s if arrivals_per_s else 0.0)

    async def stop(self) -> None:
        await asyncio.gather(*(cpe.stop() for cpe in self.cpes))
        await self.cr_server.stop()
