"""The test OpenID Provider as a separate HTTP server process (django-oauth-toolkit).

Its people, groups and registered clients are changed through its own
``django shell``, as an administrator of a real provider would in its console.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.browser_site import free_port

ROOT = Path(__file__).resolve().parents[2]


class OpenIDProvider:
    def __init__(self, data: Path) -> None:
        self.data = data
        data.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (data / "signing-key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.auth.provider.settings",
            "OP_DATA_DIR": str(data),
            "PYTHONPATH": str(ROOT),
        }
        for name in ("DATABASE_URL", "OKTOSCRIPTS_DATA_DIR"):
            self.env.pop(name, None)
        self._django("migrate", "-v0")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def _django(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise AssertionError(f"provider: django {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    def _shell(self, code: str) -> str:
        return self._django("shell", "-c", code)

    def start(self) -> None:
        log = (self.data / "provider.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                doc = requests.get(
                    self.base + "/o/.well-known/openid-configuration", timeout=2
                ).json()
                self.issuer = doc["issuer"].rstrip("/")
                return
            except (requests.RequestException, ValueError) as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(
                        "the provider did not start: "
                        + (self.data / "provider.log").read_text()[-2000:]
                    ) from exc
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def person(self, username: str, password: str, groups: list[str]) -> None:
        """Create or change a person of the provider, with exactly these groups."""
        args = json.dumps([username, password, groups])
        self._shell(
            "import json\n"
            "from django.contrib.auth.models import Group, User\n"
            f"name, password, groups = json.loads({args!r})\n"
            "user, _ = User.objects.get_or_create(username=name)\n"
            "user.email = name + '@example.net'\n"
            "user.set_password(password)\n"
            "user.save()\n"
            "user.groups.set([Group.objects.get_or_create(name=g)[0] for g in groups])\n"
        )

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """Register a confidential client (as the README tells an administrator to)."""
        client_id, secret = "oktoscripts", "client-secret-for-tests"
        args = json.dumps([client_id, secret, redirect_uri])
        self._shell(
            "import json\n"
            "from oauth2_provider.models import Application\n"
            f"client_id, secret, redirect = json.loads({args!r})\n"
            "Application.objects.filter(client_id=client_id).delete()\n"
            "Application.objects.create(name='oktoscripts', client_id=client_id,\n"
            "    client_secret=secret, client_type='confidential',\n"
            "    authorization_grant_type='authorization-code', redirect_uris=redirect,\n"
            "    algorithm='RS256', skip_authorization=True)\n"
        )
        return client_id, secret
