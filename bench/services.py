"""The embedded servers a benchmark runs against, as `up` starts them:
MongoDB and NATS unless MONGO_URI / NATS_URL name others, Django set up
(and its database migrated, when asked)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def embedded_services(
    prefix: str,
    setup_environment: Callable[[Path], None],
    keep: str | None = None,
    mongo: bool = True,
    migrate: bool = False,
) -> Iterator[tuple[Path, Any]]:
    """(state folder, EmbeddedServices) for the benchmark's lifetime; the
    servers stop and the folder goes when it ends (`keep`: a folder to put
    it under instead of the system's temporary one). `mongo`: False for a
    benchmark that never touches the device registry (no server started for
    it); `migrate`: the Django database migrated before the benchmark."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=keep) as tmp_name:
        tmp = Path(tmp_name)
        setup_environment(tmp)
        from oktoscripts.launcher.embedded.services import EmbeddedServices

        embedded = EmbeddedServices(tmp)
        try:
            if mongo and not os.environ.get("MONGO_URI"):
                os.environ["MONGO_URI"] = embedded.start_mongo()
            if not os.environ.get("NATS_URL"):
                os.environ["NATS_URL"] = embedded.start_nats()
            import django

            django.setup()
            if migrate:
                from django.core.management import call_command

                call_command("migrate", verbosity=0)
            yield tmp, embedded
        finally:
            embedded.stop()
