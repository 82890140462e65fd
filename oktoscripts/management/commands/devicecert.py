"""``python manage.py devicecert ID``: a device certificate from the platform's CA."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from oktoscripts import config
from oktoscripts.pki import Authority, pki_dir


class Command(BaseCommand):
    help = (
        "Issue a client certificate signed by the platform's own CA (generated under the "
        "data directory on first use): for a USP agent, its Endpoint ID goes in the "
        "subjectAltName as urn:bbf:usp:id:<ID>. Writes ID.pem, ID.key and ca.pem (the CA "
        "the device must trust to verify the platform) into --out."
    )

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "endpoint_id", help="the device's USP Endpoint ID (e.g. os::012345-ABC)"
        )
        parser.add_argument("--out", default=".", help="directory to write to (default: here)")

    def handle(self, *args, endpoint_id: str, out: str, **options) -> None:  # noqa: ANN001
        if not endpoint_id or any(c.isspace() for c in endpoint_id):
            raise CommandError(f"not an Endpoint ID: {endpoint_id!r}")
        if config.is_set("OKTOSCRIPTS_TLS_CERT"):
            raise CommandError(
                "OKTOSCRIPTS_TLS_CERT is set: issue device certificates from your own CA"
            )
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        authority = Authority.ensure(pki_dir())
        cert, key = authority.issue_usp_agent(endpoint_id)
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", endpoint_id)
        key_path = directory / f"{stem}.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        (directory / f"{stem}.pem").write_bytes(cert)
        shutil.copyfile(authority.ca_path, directory / "ca.pem")
        self.stdout.write(f"wrote {directory / stem}.pem, {key_path} and {directory / 'ca.pem'}")
