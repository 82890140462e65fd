"""What the ACS needs from the device registry and the credential store.

Both are synchronous pymongo code (oktoscripts.devices); the ACS calls them
from a small thread pool so its event loop never waits on MongoDB. Concurrent
Informs are written in batches (group commit, oktoscripts/devices/batching.py:
one bulk upsert per few milliseconds), which keeps a bootstrap storm to a few
round trips a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from oktoscripts.cwmp import onboarding, paths
from oktoscripts.cwmp.soap import CwmpFault, DeviceId, Inform, RpcRequest
from oktoscripts.cwmp.ttlcache import TtlCache
from oktoscripts.devices.batching import LoopGroupCommit
from oktoscripts.devices.credentials import CredentialStore, DeviceBinding, digest_realm
from oktoscripts.devices.identifiers import tr069_usernames
from oktoscripts.devices.registry import DeviceRegistry, DeviceUpdate

log = logging.getLogger(__name__)

CR_CREDENTIALS = "connection request credentials"
MODEL_NAME = "model name"  # not in the Inform: read once, in the first session
# How long the ACS trusts what it read from MongoDB about a credential or a
# device: a changed password or a deleted device takes effect within this.
CACHE_TTL_S = 30.0
BATCH_MAX = 200


class DeviceBackend:
    def __init__(
        self, registry: DeviceRegistry, credentials: CredentialStore, threads: int = 4
    ) -> None:
        self.registry = registry
        self.credentials = credentials
        self.realm = digest_realm()
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, "acs-db")
        # Basic passwords are checked with scrypt: on a thread of their own, so
        # that password guessing cannot hold up the device writes.
        self._auth_pool = concurrent.futures.ThreadPoolExecutor(1, "acs-auth")
        # Group commit: concurrent Informs share one bulk upsert.
        self._informs: LoopGroupCommit[DeviceUpdate, bool] = LoopGroupCommit(
            self._write_informs, self._run, max_batch=BATCH_MAX
        )
        # Serials whose connection-request credentials are known to be set.
        self._cr_ready: set[str] = set()
        self._models: dict[str, str] = {}  # read in this session, stored with the credentials
        self._ha1 = TtlCache(CACHE_TTL_S)
        self._bindings = TtlCache(CACHE_TTL_S)  # username -> DeviceBinding
        self._basic_ok = TtlCache(CACHE_TTL_S)
        self._known = TtlCache(CACHE_TTL_S)  # serials in the registry
        self._cr = TtlCache(CACHE_TTL_S)  # serial -> (url, username, password) | None
        self._secret = secrets.token_bytes(16)

    async def _run(self, func: object, *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    async def run(self, func: object, *args: object) -> object:
        """A blocking database call off the event loop (the ACS's pool)."""
        return await self._run(func, *args)

    # -- credentials -------------------------------------------------------

    async def verify_basic(
        self, username: str, password: str, allowed: Callable[[], bool] = lambda: True
    ) -> bool:
        """Whether the password is right. ``allowed`` is asked again when the
        check's turn comes (False: not checked, False returned)."""
        # Many CPEs send Basic on every request: remember a success (keyed by a
        # keyed hash, never the password) instead of asking MongoDB each time.
        memo = hashlib.sha256(self._secret + f"{username}\0{password}".encode()).digest()
        if memo in self._basic_ok:
            return True

        def check() -> bool:
            return allowed() and self.credentials.verify_basic(username, password)

        ok = await asyncio.get_running_loop().run_in_executor(self._auth_pool, check)
        if ok:
            self._basic_ok.put(memo, True)
        return ok

    async def digest_ha1(self, username: str) -> str | None:
        ha1 = self._ha1.get(username)
        if ha1 is None:
            ha1 = await self._run(self.credentials.digest_ha1, username, self.realm)
            if ha1 is not None:
                self._ha1.put(username, ha1)
        return ha1

    async def speaks_for(self, username: str, device: DeviceId) -> bool:
        """Whether the credential ``username`` may speak for the CPE ``device``:
        when its username names the CPE no lookup is needed; else the devices
        it is bound to are read (and trusted for CACHE_TTL_S)."""
        names = (device.oui, device.product_class, device.serial_number)
        if DeviceBinding(username).permits_cwmp(*names):
            return True
        binding = self._bindings.get(username)
        if binding is None:
            binding = await self._run(self.credentials.binding, username)
            binding = binding or DeviceBinding(username)
            self._bindings.put(username, binding)
        return binding.permits_cwmp(*names)

    # -- devices -----------------------------------------------------------

    async def exists(self, serial: str) -> bool:
        if serial in self._known:
            return True
        found = await self._run(self.registry.get, serial) is not None
        if found:
            self._known.put(serial, True)
        return found

    async def exists_now(self, serial: str) -> bool:
        """Whether the registry has the device, asked of the database: a device
        another process deleted a moment ago must not be reached (and re-created)
        from what this process still caches about it."""
        found = await self._run(self.registry.exists, serial)
        if found:
            self._known.put(serial, True)
        else:
            self._known.discard(serial)
            self._cr.discard(serial)
            self._cr_ready.discard(serial)
        return found

    async def record_inform(self, inform: Inform, ip: str, cwmp_ns: str) -> bool:
        """Store what the Inform says; True if the device is new. Returns once
        MongoDB has acknowledged the write."""
        params = inform.parameters
        data_model = paths.data_model_of(params)

        def value(key: str) -> str | None:
            return paths.lookup(params, data_model, key)

        interval = value("periodic_inform_interval")
        update = self.registry.cwmp_update(
            inform.device_id.serial_number,
            oui=inform.device_id.oui,
            product_class=inform.device_id.product_class,
            manufacturer=inform.device_id.manufacturer,
            model=value("model"),
            software_version=value("software_version"),
            hardware_version=value("hardware_version"),
            data_model=data_model or None,
            ip=ip or None,
            periodic_inform_interval=int(interval) if interval and interval.isdigit() else None,
            connection_request_url=value("connection_request_url"),
            events=[e.code for e in inform.events],
        )
        update.fields["cwmp_ns"] = cwmp_ns
        self._known.put(update.serial, True)
        cached = self._cr.get(update.serial)
        if cached is not None and cached[0] != value("connection_request_url"):
            self._cr.discard(update.serial)
        if any(e.number == "0" for e in inform.events):
            # A factory reset forgets the credentials we set: set them again.
            self._cr_ready.discard(update.serial)
        return await self._informs.submit(update)

    def _write_informs(self, updates: list[DeviceUpdate]) -> list[bool]:
        """One bulk upsert (on the backend's threads); whether each device is new."""
        return [result.inserted for result in self.registry.bulk_upsert(updates)]

    # -- connection requests -------------------------------------------------

    async def connection_request(self, serial: str) -> tuple[str, str, str] | None:
        """(url, username, password) of the CPE, None if it never gave a URL."""
        cached = self._cr.get(serial)
        if cached is not None:
            return cached
        cr = await self._run(self.registry.connection_request, serial)
        if cr is None:
            return None
        details = (cr.url, cr.username, cr.password or "")
        self._cr.put(serial, details)
        return details

    async def provisioning(
        self,
        serial: str,
        data_model: str,
        new_device: bool = False,
        onboard_oui: str | None = None,
        bootstrap: bool = False,
    ) -> list[tuple[RpcRequest, str]]:
        """What the ACS sets on the CPE in this session: connection-request
        credentials when the platform holds none for it (new device, factory
        reset, SECRET_KEY changed); with ``onboard_oui`` (a CPE admitted with a
        factory credential), an ACS credential of its own as well."""
        steps = await self._cr_provisioning(serial, data_model, new_device, bootstrap)
        if onboard_oui is not None and data_model:
            username, password = onboarding.own_credential(onboard_oui, serial)
            steps.append(
                (
                    onboarding.credential_request(paths.ROOTS[data_model], username, password),
                    onboarding.ACS_CREDENTIAL,
                )
            )
        return steps

    async def _cr_provisioning(
        self, serial: str, data_model: str, new_device: bool, bootstrap: bool
    ) -> list[tuple[RpcRequest, str]]:
        if serial in self._cr_ready or not data_model:
            return []
        # A bootstrap (factory reset) forgot what we set: what we hold is stale.
        cr = None if new_device or bootstrap else await self.connection_request(serial)
        if cr is not None and cr[2]:
            self._cr_ready.add(serial)
            return []
        root = paths.ROOTS[data_model]
        credentials = RpcRequest(
            "SetParameterValues",
            values=[
                (
                    root + "ManagementServer.ConnectionRequestUsername",
                    f"okto-{secrets.token_hex(4)}",
                    "string",
                ),
                (
                    root + "ManagementServer.ConnectionRequestPassword",
                    secrets.token_urlsafe(18),
                    "string",
                ),
            ],
            parameter_key="oktoscripts-cr",
        )
        steps = [(credentials, CR_CREDENTIALS)]
        if new_device:
            model = RpcRequest("GetParameterValues", names=paths.PATHS[data_model]["model"])
            steps.insert(0, (model, MODEL_NAME))
        return steps

    async def provisioned(
        self, serial: str, purpose: str, request: RpcRequest, result: object
    ) -> None:
        """The CPE answered ``request`` (``result`` may be a CwmpFault): remember
        what it changed or told, in one write per session."""
        ok = not isinstance(result, CwmpFault)
        if purpose == MODEL_NAME:
            if ok and result:
                self._models[serial] = next(iter(result.values()))
            return
        if purpose == onboarding.ACS_CREDENTIAL:
            await self._onboarded(serial, request, result)
            return
        if purpose != CR_CREDENTIALS:
            return
        model = self._models.pop(serial, None)
        if not ok and model is None:
            return
        username = request.values[0][1] if ok else None
        password = request.values[1][1] if ok else None
        await self._run(
            lambda: self.registry.upsert_cwmp(
                serial,
                model=model,
                connection_request_username=username,
                connection_request_password=password,
                state=None,  # not an Inform: the deadline of the last Inform stays
            )
        )
        if ok:
            self._cr_ready.add(serial)
            self._cr.discard(serial)

    # -- onboarding (OKTOSCRIPTS_ACS_AUTH=onboard) --------------------------------

    async def has_own_credential(self, device: DeviceId) -> bool:
        """Whether a credential named after the CPE's DeviceId (TR-069 3.4.4) exists:
        then its factory credential is no good any more."""
        names = tr069_usernames(device.oui, device.product_class, device.serial_number)
        return bool(await self._run(self.credentials.existing, list(names)))

    async def _onboarded(self, serial: str, request: RpcRequest, result: object) -> None:
        """The CPE answered the SetParameterValues of its own ACS credential."""
        now = datetime.now(UTC)
        if isinstance(result, CwmpFault):
            log.warning(
                "CPE %s refused its own ACS credential (%s %s): it stays on the factory credential",
                serial,
                result.fault_code,
                result.fault_string,
            )
            info = {
                "state": "refused",
                "at": now,
                "fault": f"{result.fault_code} {result.fault_string}",
            }
        else:
            username, password = request.values[0][1], request.values[1][1]
            # Stored before the session ends: its next session uses it.
            await self._run(self.credentials.create_or_update, username, password)
            self._bindings.discard(username)
            log.info("CPE %s onboarded: it was given the ACS credential %r", serial, username)
            info = {"state": "done", "at": now, "username": username}
        await self._run(self.registry.set_onboarding, serial, info)

    async def factory_refused(self, serial: str) -> None:
        """Record on the device that it came back with the factory credential."""
        try:
            await self._run(self.registry.note_factory_refusal, serial, datetime.now(UTC))
        except Exception:  # noqa: BLE001 - the refusal itself is what matters
            log.exception("recording the factory-credential refusal of %s", serial)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._auth_pool.shutdown(wait=False)
