"""The process supervisor of ``python manage.py up``: children in their own
process groups, prefixed logs, restarts with back-off, a clean stop."""

from oktoscripts.launcher.supervisor.supervisor import StartupError, Supervisor

__all__ = ["StartupError", "Supervisor"]
