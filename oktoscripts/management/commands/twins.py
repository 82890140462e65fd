"""``python manage.py twins``: device twins without Lua or the IDE.

``twins run`` is the twin host (``up`` starts it): it snapshots requested
twins and runs them all until stopped. ``twins create SERIAL [--name N]
[--wait S]``, ``twins reset SERIAL``, ``twins delete SERIAL`` and ``twins
list`` change and show what it runs. ``twins demo`` (or ``twins run --demo``,
as ``up`` starts it) adds the built-in demo twins (oktoscripts/twins/demos.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

from django.core.management.base import BaseCommand, CommandError

from oktoscripts.twins import store


class Command(BaseCommand):
    help = (
        "Device twins: 'run' hosts them (up starts it); 'create SERIAL' twins a device "
        "(snapshot of its whole data model, then a simulated twin '<serial>~twin'); "
        "'reset', 'delete', 'list'."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("action", choices=("run", "create", "reset", "delete", "list", "demo"))
        parser.add_argument("serial", nargs="?", help="the device (create) or the twin")
        parser.add_argument("--name", default=None, help="create: the twin's serial")
        parser.add_argument(
            "--wait",
            type=float,
            default=60.0,
            help="create: seconds to wait for the twin to run (0: do not wait)",
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="run: start the built-in demo twins too (oktoscripts/twins/snapshots)",
        )

    def handle(self, *args: object, **options: object) -> None:
        action = options["action"]
        if action == "run":
            asyncio.run(self._run(bool(options["demo"])))
            return
        from oktoscripts.devices.client import mongo_database

        db = mongo_database()
        if action == "demo":
            from oktoscripts.twins import demos

            for serial in demos.ensure(db, by="manage.py"):
                self.stdout.write(f"{serial}: demo twin (the twin host starts it)")
            return
        if action == "list":
            for doc in store.all_twins(db):
                self.stdout.write(
                    f"{doc['_id']}\t{doc['state']}\tof {doc['source']}"
                    f"\tsnapshot {doc.get('snapshot') or '-'}"
                    f"{chr(9) + doc['error'] if doc.get('error') else ''}"
                )
            return
        serial = options["serial"]
        if not serial:
            raise CommandError(f"'twins {action}' needs a serial")
        try:
            if action == "create":
                doc = store.request(db, serial, name=options["name"], by="manage.py")
                self._wait(db, doc["_id"], options["wait"])
            elif action == "reset":
                store.reset(db, serial)
                self.stdout.write(f"{serial}: back to its snapshot shortly")
            else:
                store.delete(db, serial)
                self.stdout.write(f"{serial}: deleted")
        except store.TwinError as exc:
            raise CommandError(str(exc)) from None

    def _wait(self, db: object, serial: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        doc = store.get(db, serial)
        while doc["state"] in ("requested", "snapshotting") and time.monotonic() < deadline:
            time.sleep(0.2)
            doc = store.get(db, serial)
        if doc["state"] == "failed":
            raise CommandError(f"{serial}: {doc['error']}")
        self.stdout.write(
            json.dumps({"serial": serial, "state": doc["state"], "snapshot": doc.get("snapshot")})
        )
        if doc["state"] == "requested":
            self.stderr.write("no twin host took it yet: is 'manage.py twins run' running?")

    async def _run(self, demo: bool) -> None:
        from oktoscripts.bus.connection import connect
        from oktoscripts.devices.client import default_credentials, mongo_database
        from oktoscripts.management.commands.simulate import Command as Simulate
        from oktoscripts.twins.host import HostOptions, TwinHost

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        acs_url, ca_file = Simulate._acs_url({"acs_url": None, "ca_file": None})
        nc = await connect("twin-host")
        credentials = await asyncio.to_thread(default_credentials)
        host = TwinHost(
            mongo_database(), nc, HostOptions(acs_url=acs_url, ca_file=ca_file), credentials
        )
        if demo:
            from oktoscripts.twins import demos

            started = await asyncio.to_thread(demos.ensure, host.db)
            self.stdout.write(f"twin host: demo twins {', '.join(started)}")
        task = asyncio.ensure_future(host.run())
        self.stdout.write(f"twin host: CWMP twins talk to {acs_url}")
        self.stdout.write("twins host ready")
        self.stdout.flush()
        await stop.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await nc.drain()
