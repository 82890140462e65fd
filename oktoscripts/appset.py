"""Which Django apps a process loads: every app, or the worker's set.

The web process serves pages, the admin, WebSockets and the REST API; a worker
runs scripts and needs none of them. Loading them anyway cost each worker
about 40 MB of its memory: daphne installs twisted's reactor as Django sets up,
the admin, ninja and channels bring their own stacks. ``manage.py`` picks the
set from its command before Django is set up (``select_for_command``), and
settings.py filters INSTALLED_APPS through ``installed_apps``. Any other way
of loading the settings (the web process, tests, ``django-admin``) gets every
app.

The worker's set keeps every app that has models, so that it reaches every
model (and every cascade of a delete). The one model left out is the admin's
LogEntry: a worker never deletes a user or a content type.
"""

from __future__ import annotations

# Apps only the web process uses: the ASGI server, the admin, messages and
# static files of pages, WebSockets, the IDE's editor widget, the REST API.
WEB_ONLY_APPS = frozenset(
    {
        "daphne",
        "django.contrib.admin",
        "django.contrib.messages",
        "django.contrib.staticfiles",
        "channels",
        "django_ace",
        "ninja",
    }
)

# The management commands that load the worker's set.
WORKER_COMMANDS = frozenset({"worker"})

_worker_set = False


def select_for_command(argv: list[str]) -> None:
    """Called by manage.py with its argv, before Django is set up."""
    global _worker_set
    _worker_set = len(argv) > 1 and argv[1] in WORKER_COMMANDS


def is_worker_set() -> bool:
    return _worker_set


def installed_apps(apps: list[str]) -> list[str]:
    """``apps`` as this process loads them."""
    if not _worker_set:
        return apps
    return [app for app in apps if app not in WEB_ONLY_APPS]
