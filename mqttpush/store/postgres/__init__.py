"""The PostgreSQL task store, for several processes sharing one agent's state.

Needs the ``postgres`` extra (``pip install 'mqttpush[postgres]'``). The schema is
created and upgraded by versioned migrations: run :func:`migrate` (or
``mqttpush store migrate --url URL``) before the first start and after each upgrade,
or open the store with ``migrate=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from mqttpush.store.postgres import rows
from mqttpush.store.postgres.schema import SCHEMA_VERSION, Migration, apply_pending, current_version
from mqttpush.store.postgres.store import PostgresTaskStore

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = ["SCHEMA_VERSION", "Migration", "PostgresTaskStore", "migrate", "schema_version"]


async def _connect(url: str, where: str, timeout: float) -> AsyncConnection[tuple[object, ...]]:
    with rows.translate(where):
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=max(1, round(timeout))
        )


async def migrate(url: str, *, timeout: float = 10.0) -> list[Migration]:
    """Bring the database at ``url`` to this mqttpush's schema; safe to run again.

    Args:
        url: A libpq connection string, e.g. ``postgresql://mqttpush@db.example/mqttpush``.
        timeout: Seconds to wait for the connection.

    Returns:
        The migrations applied, oldest first; empty when there was nothing to do.

    Raises:
        StoreUnavailableError: The server cannot be reached.
        StoreSchemaError: The database's schema is newer than this mqttpush.
        StoreError: A migration failed (nothing of it is kept).
    """
    where = rows.describe(url)
    async with await _connect(url, where, timeout) as conn:
        with rows.translate(where):
            return await apply_pending(conn, where)


async def schema_version(url: str, *, timeout: float = 10.0) -> int:
    """The schema version of the database at ``url`` (0: never migrated).

    Raises:
        StoreUnavailableError: The server cannot be reached.
    """
    where = rows.describe(url)
    async with await _connect(url, where, timeout) as conn:
        with rows.translate(where):
            return await current_version(conn)
