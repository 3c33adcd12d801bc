"""A connection of its own, outside the pool, for the statements that must not queue.

A pool copy renews its leases and claims the expired ones every third of the lease time;
if those statements waited for a pooled connection behind the task and delivery writes
of a busy process, leases would lapse while their copy is alive, and a dead copy's
tasks would wait longer than the documented bound. So they run on this one connection:
opened on first use, each statement (connecting included) given up after ``timeout``,
and the connection dropped after any failure and opened again on the next statement.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import DictRow, dict_row

from mqttpush.errors import StoreUnavailableError
from mqttpush.store.postgres import rows

if TYPE_CHECKING:
    from psycopg import AsyncConnection

__all__ = ["DedicatedConnection"]


class DedicatedConnection:
    """One PostgreSQL connection, one statement at a time, each bounded by ``timeout``.

    Args:
        url: The libpq connection string.
        where: The database, as error messages name it.
        timeout: Seconds one statement may take, connecting and waiting its turn included.
        name: The ``application_name`` the server shows for it.
    """

    def __init__(self, url: str, where: str, timeout: float, name: str) -> None:
        self._url = url
        self._where = where
        self._timeout = timeout
        self._name = name
        self._conn: AsyncConnection[DictRow] | None = None
        self._lock: asyncio.Lock | None = None
        self.connects = 0  #: connections opened so far (a reconnect counts)

    async def fetch(self, query: str, params: dict[str, Any]) -> list[DictRow]:
        """Run one statement and return its rows.

        Raises:
            StoreUnavailableError: No answer within ``timeout``, or the connection failed.
            StoreError: Any other database error.
        """
        self._lock = self._lock or asyncio.Lock()
        try:
            async with asyncio.timeout(self._timeout), self._lock:
                with rows.translate(self._where):
                    try:
                        conn = await self._connected()
                        cur = await conn.execute(query.encode(), params)
                        return await cur.fetchall()
                    except psycopg.Error:
                        if self._conn is not None and self._conn.broken:
                            await self.close()
                        raise
        except TimeoutError:
            await self.close()  # mid-statement, perhaps: start clean next time
            raise StoreUnavailableError(
                f"task store {self._where}: no answer on the {self._name} connection "
                f"within {self._timeout} s"
            ) from None

    async def _connected(self) -> AsyncConnection[DictRow]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._url,
                autocommit=True,
                row_factory=dict_row,
                application_name=self._name,
                connect_timeout=max(1, round(self._timeout)),
            )
            self.connects += 1
            await self._conn.execute("SET TIME ZONE 'UTC'")
        return self._conn

    async def close(self) -> None:
        """Close the connection, if open; the next statement opens another."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
