"""A real PostgreSQL for the tests: a private cluster on a free port, started by the tests.

``postgres`` (session) starts a :class:`mqttpush.tools.pgserver.LocalPostgres` (``initdb``
and ``pg_ctl start`` from the OS package in a temporary folder, listening on 127.0.0.1
only; the benchmarks use the same) and stops it at the end of the session.
``postgres_url`` gives each test a fresh database on it, dropped afterwards;
``private_postgres`` gives a test a server of its own (to stop and start). Without
PostgreSQL the tests fail and say how to install it; they are never skipped.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from mqttpush.tools.pgserver import LocalPostgres

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LocalPostgres", "postgres", "postgres_url", "private_postgres"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """The session's PostgreSQL server."""
    with LocalPostgres() as server:
        yield server


@pytest.fixture
def private_postgres() -> Iterator[LocalPostgres]:
    """A server of one test's own, which it may stop and start without disturbing others."""
    with LocalPostgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: LocalPostgres) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.execute(f'CREATE DATABASE "{name}"')
    yield postgres.url(name)
    postgres.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


_FIXTURES = frozenset({"postgres", "postgres_url", "private_postgres"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts PostgreSQL ``broker`` (an integration test)."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if _FIXTURES.intersection(fixtures) or "postgres" in params:
            item.add_marker(pytest.mark.broker)
