"""A worker loads the worker's app set (oktoscripts/appset.py): none of the web
process's stacks, every model the platform has."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from django.apps import apps

from oktoscripts import appset
from tests.processes import ROOT

# What `manage.py worker` does before serving: select the set from its argv,
# set Django up, import the command (the worker, the bindings) and run the
# system checks it requires.
PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oktoscripts.settings")
from oktoscripts import appset
appset.select_for_command(["manage.py", "worker"])
import django
django.setup()
from django.apps import apps
from oktoscripts.management.commands.worker import Command
command = Command()
command.check(tags=command.requires_system_checks)
print(json.dumps({
    "models": sorted(m._meta.label for m in apps.get_models()),
    "modules": sorted(sys.modules),
}))
"""

# Top-level packages of the web process only: the ASGI server (and the
# twisted reactor it installs), the admin, the REST API, WebSockets.
WEB_STACKS = ("daphne", "twisted", "django.contrib.admin", "ninja", "channels", "django_ace")


def _worker_view() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_a_worker_loads_no_web_stack_and_reaches_every_model():
    view = _worker_view()
    loaded = [m for m in view["modules"] if m.split(".")[0] in WEB_STACKS or m in WEB_STACKS]
    loaded += [m for m in view["modules"] if m.startswith("django.contrib.admin")]
    assert loaded == []
    # Every model of the full set but the admin's log (a worker deletes no user).
    everything = {m._meta.label for m in apps.get_models()} - {"admin.LogEntry"}
    assert everything - set(view["models"]) == set()


def test_other_processes_load_every_app():
    appset.select_for_command(["manage.py", "runserver"])
    assert appset.installed_apps(["daphne", "oktoscripts"]) == ["daphne", "oktoscripts"]
    appset.select_for_command(["manage.py"])
    assert appset.installed_apps(["ninja"]) == ["ninja"]
