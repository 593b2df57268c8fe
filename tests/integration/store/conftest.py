"""The store's fixtures for these tests: a session PostgreSQL, and ``store`` on each backend."""

from tests.support.postgres import postgres_server, postgres_url  # noqa: F401
from tests.support.store import store  # noqa: F401
