"""The scripts tests share the run and automation fixtures (real NATS, MongoDB)."""

from tests.automations.conftest import (  # noqa: F401 - shared fixtures
    automation_service,
    close_async_db_connections,
    close_blocking_nats,
    make_script,
    nc,
    operator,
    registry,
)
