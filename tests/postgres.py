"""A real PostgreSQL for the tests: a private cluster on a free port, started by the tests.

``postgres`` (session) runs ``initdb`` and ``pg_ctl start`` from the OS package in a
temporary folder, listening on 127.0.0.1 only, and stops it at the end of the session.
``postgres_url`` gives each test a fresh database on it, dropped afterwards;
``private_postgres`` gives a test a server of its own (to stop and start). Without
PostgreSQL the tests fail and say how to install it; they are never skipped.

``initdb`` refuses to run as root: when the tests run as root, the cluster belongs to
the ``postgres`` user (created by the package).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LocalPostgres", "postgres", "postgres_url", "private_postgres"]

_INSTALL = "apt-get install postgresql (Debian/Ubuntu), or put initdb and pg_ctl on PATH"


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found is not None:
        return found
    # Debian keeps the server's programs out of PATH, one folder per major version.
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if not candidates:
        pytest.fail(f"PostgreSQL is not installed ({name} not found): {_INSTALL}")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """A PostgreSQL cluster of its own in a temporary folder; a context manager.

    Attributes:
        port: Where it listens, on 127.0.0.1.
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self._root = Path(tempfile.mkdtemp(prefix="mqttpush-pg-"))
        self._data = self._root / "data"
        self._as_root = os.geteuid() == 0
        self._user: str | None = "postgres" if self._as_root else None
        if self._as_root:
            shutil.chown(self._root, "postgres", "postgres")

    def url(self, dbname: str = "postgres") -> str:
        """A connection URL for one of its databases."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *command: str, timeout: float = 120) -> None:
        done = subprocess.run(
            command,
            user=self._user,
            cwd=self._root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        """Start the server, making the cluster first if needed; return once it accepts."""
        if not self._data.exists():
            self._run(
                _bin("initdb"),
                "-D", str(self._data),
                "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        log = str(self._root / "server.log")
        pg_ctl = _bin("pg_ctl")
        self._run(pg_ctl, "-D", str(self._data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """Stop the server (fast shutdown: connections are closed)."""
        self._run(_bin("pg_ctl"), "-D", str(self._data), "-m", "fast", "-w", "stop")

    def execute(self, statement: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit; return its rows, if any."""
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cur = conn.execute(statement.encode())
            return cur.fetchall() if cur.description else []

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)


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
