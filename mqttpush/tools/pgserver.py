"""A private PostgreSQL server on a free 127.0.0.1 port, for the tests and the benchmarks.

:class:`LocalPostgres` runs ``initdb`` and ``pg_ctl`` from the OS package in a temporary
folder (trust authentication, ``fsync`` off: for measuring and testing, not for data
that matters) and removes the folder when stopped. ``initdb`` refuses to run as root:
run as root, the cluster belongs to the ``postgres`` user (created by the package).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Self

from mqttpush.errors import ConfigurationError, StoreUnavailableError
from mqttpush.tools.devbroker import free_port

__all__ = ["INSTALL", "LocalPostgres", "server_binary"]

#: How to get the server's programs.
INSTALL = "apt-get install postgresql (Debian/Ubuntu), or put initdb and pg_ctl on PATH"


def server_binary(name: str) -> str:
    """The path of one of the server's programs (``initdb``, ``pg_ctl``).

    Raises:
        ConfigurationError: PostgreSQL is not installed (the message says how to).
    """
    found = shutil.which(name)
    if found is not None:
        return found
    # Debian keeps the server's programs out of PATH, one folder per major version.
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if not candidates:
        raise ConfigurationError(f"PostgreSQL is not installed ({name} not found): {INSTALL}")
    return candidates[-1]


class LocalPostgres:
    """A PostgreSQL cluster of its own in a temporary folder; a context manager.

    Attributes:
        port: Where it listens, on 127.0.0.1.
    """

    def __init__(self) -> None:
        self.port = free_port()
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
        done = subprocess.run(  # noqa: S603 - the package's own programs
            command,
            user=self._user,
            cwd=self._root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise StoreUnavailableError(
                f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}"
            )

    def start(self) -> None:
        """Start the server, making the cluster first if needed; return once it accepts.

        Raises:
            ConfigurationError: PostgreSQL is not installed.
            StoreUnavailableError: ``initdb`` or ``pg_ctl`` failed.
        """
        if not self._data.exists():
            self._run(
                server_binary("initdb"),
                "-D", str(self._data),
                "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        options = (
            f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        log = str(self._root / "server.log")
        pg_ctl = server_binary("pg_ctl")
        self._run(pg_ctl, "-D", str(self._data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """Stop the server (fast shutdown: connections are closed)."""
        self._run(server_binary("pg_ctl"), "-D", str(self._data), "-m", "fast", "-w", "stop")

    def execute(self, statement: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit; return its rows, if any."""
        import psycopg  # noqa: PLC0415 - the postgres extra

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cur = conn.execute(statement.encode())
            return cur.fetchall() if cur.description else []

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self._root, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
