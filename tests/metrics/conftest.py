"""The run tests' fixtures: a NATS client and the environment of platform processes."""

from tests.automations.conftest import close_blocking_nats  # noqa: F401 - fixture
from tests.runs.conftest import (  # noqa: F401 - fixtures
    close_async_db_connections,
    nc,
    process_env,
)
