"""Versioned migrations of the PostgreSQL task store.

Migrations are SQL files shipped with the package, ``migrations/NNNN_name.sql``, numbered
from 1 without gaps. The table ``mqttpush_schema`` records each one applied (version,
name, when). :func:`apply_pending` applies the missing ones in one transaction, under a
transaction-level advisory lock, so several processes migrating at once apply each
migration once; a database whose version is newer than the newest file is refused.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from mqttpush.errors import StoreSchemaError

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = [
    "SCHEMA_VERSION",
    "Migration",
    "apply_pending",
    "check_current",
    "check_not_newer",
    "current_version",
    "migrations",
]

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# Any constant 64-bit key: it only has to be the same in every mqttpush process.
_LOCK_KEY = 0x6D71_7474_7075_7368  # "mqttpush"
_SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS mqttpush_schema (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step.

    Attributes:
        version: Its number, from 1.
        name: Its file name without the number and ``.sql``, e.g. ``"leases"``.
        sql: The statements it runs.
    """

    version: int
    name: str
    sql: str

    def __str__(self) -> str:
        return f"{self.version:04d}_{self.name}"


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """The migrations shipped with this mqttpush, in order.

    Raises:
        StoreSchemaError: The files are misnamed or not numbered 1, 2, 3... (a broken
            installation).
    """
    folder = resources.files(__package__ or __name__).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE.fullmatch(entry.name)
        if match is not None:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StoreSchemaError(f"migrations not numbered 1..n: {[str(m) for m in found]}")
    return tuple(found)


#: The schema version this mqttpush reads and writes: its newest migration.
SCHEMA_VERSION = len(migrations())


async def current_version(conn: AsyncConnection[Any]) -> int:
    """The schema version of the database (0 when mqttpush never migrated it)."""
    cur = await conn.execute("SELECT to_regclass('mqttpush_schema') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return 0
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM mqttpush_schema")
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


def check_not_newer(version: int, where: str) -> None:
    """Refuse a database written by a newer mqttpush.

    Raises:
        StoreSchemaError: ``version`` is above :data:`SCHEMA_VERSION`.
    """
    if version > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"task store {where}: schema version {version} is newer than {SCHEMA_VERSION}, "
            "the newest this mqttpush knows; upgrade mqttpush"
        )


def check_current(version: int, where: str) -> None:
    """Refuse a database whose schema is not this mqttpush's.

    Raises:
        StoreSchemaError: ``version`` is newer than :data:`SCHEMA_VERSION`, or older
            (migrations are pending).
    """
    check_not_newer(version, where)
    if version < SCHEMA_VERSION:
        raise StoreSchemaError(
            f"task store {where}: schema version {version}, this mqttpush needs "
            f"{SCHEMA_VERSION}: run 'mqttpush store migrate --url URL'"
        )


async def apply_pending(conn: AsyncConnection[Any], where: str) -> list[Migration]:
    """Apply the migrations the database lacks, in one transaction.

    Args:
        conn: A connection in autocommit mode.
        where: The database, as error messages name it (no password).

    Returns:
        The migrations applied, oldest first; empty when the schema was up to date.

    Raises:
        StoreSchemaError: The database's schema is newer than this mqttpush.
    """
    async with conn.transaction():
        # Serialise migrators: the second one waits, then finds nothing left to do.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(_SCHEMA_TABLE)
        version = await current_version(conn)
        check_not_newer(version, where)
        pending = list(migrations()[version:])
        for migration in pending:
            await conn.execute(migration.sql.encode())  # no parameters: several statements
            await conn.execute(
                "INSERT INTO mqttpush_schema (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
    return pending
