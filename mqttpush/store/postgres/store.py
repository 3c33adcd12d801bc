"""The PostgreSQL task store: one database shared by every process that serves an agent.

Driver: psycopg 3 with psycopg_pool. It is the PostgreSQL adapter maintained with the
database's own community, ships type information (this package is checked by mypy
strict without stubs), and speaks through libpq, so ``PGPASSWORD``, ``~/.pgpass``,
service files and every ``sslmode`` work as with ``psql``. Its pool checks a connection
before lending it, so the store recovers by itself after the server restarts. asyncpg
is faster per query, but untyped, and the store's cost is round trips, not decoding.

Lease renewals and take-overs run on a connection of their own, outside the pool
(:mod:`mqttpush.store.postgres.dedicated`). Every save is committed before its method
returns (autocommit; the multi-statement operations run in one transaction). Any
database error is raised again as :class:`~mqttpush.errors.StoreError`, and an
unreachable server, a broken connection or a pool that lends no connection within
``timeout`` as
:class:`~mqttpush.errors.StoreUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC
from typing import TYPE_CHECKING, Any, Self

from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from mqttpush.errors import StoreError
from mqttpush.store.base import (
    Delivery,
    DeliveryState,
    Lease,
    StoredTask,
    TakenOver,
    TaskStore,
    endpoint_from_columns,
    endpoint_options,
)
from mqttpush.store.postgres import rows, schema, sql
from mqttpush.store.postgres.dedicated import DedicatedConnection
from mqttpush.store.postgres.replies import PostgresReplies
from mqttpush.store.records import check_lease_args

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from psycopg import AsyncConnection

    from mqttpush.models import TaskPushNotificationConfig

__all__ = ["PostgresTaskStore"]


class PostgresTaskStore(PostgresReplies, TaskStore):
    """A :class:`~mqttpush.store.TaskStore` in a PostgreSQL database, through a connection pool.

    Made without I/O; the pool opens on first use (or ``async with``), inside the event
    loop that uses it, and checks the schema then.

    Args:
        url: A libpq connection string, e.g. ``postgresql://mqttpush@db.example:5432/mqttpush``.
        pool_size: Connections this process opens at most (one is kept open).
        timeout: Seconds an operation waits for a connection before it fails.
        migrate: Apply pending migrations when opening, instead of refusing the database.
        lease_timeout: Seconds a lease renewal or take-over may take on the connection
            kept for them, outside the pool (default: ``timeout``).

    Raises:
        ConfigurationError: ``url`` is not a connection string.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeout: float = 5.0,
        migrate: bool = False,
        lease_timeout: float | None = None,
    ) -> None:
        self.where = rows.describe(url)
        # Renewals never wait behind the pool's users (mqttpush.store.postgres.dedicated).
        self.leases_connection = DedicatedConnection(
            url, self.where, lease_timeout or timeout, "mqttpush-leases"
        )
        self._url = url
        self._pool_size = pool_size
        self._timeout = timeout
        self._migrate = migrate
        self._pool: AsyncConnectionPool | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False

    async def open(self) -> None:
        """Open the pool and check the schema (applying migrations if asked to).

        Raises:
            StoreUnavailableError: The server cannot be reached within ``timeout``.
            StoreSchemaError: The schema is newer than this mqttpush, or not migrated.
        """
        await self._ready()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def _ready(self) -> AsyncConnectionPool:
        if self._closed:
            raise StoreError(f"task store {self.where} is closed")
        if self._pool is not None:
            return self._pool
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await self._open_pool()
        return self._pool

    async def _open_pool(self) -> AsyncConnectionPool:
        pool = AsyncConnectionPool(
            self._url,
            min_size=1,
            max_size=self._pool_size,
            timeout=self._timeout,
            kwargs={"autocommit": True, "application_name": "mqttpush"},
            configure=rows.configure,
            check=AsyncConnectionPool.check_connection,
            name="mqttpush-store",
            open=False,
        )
        try:
            with rows.translate(self.where):
                await pool.open(wait=True, timeout=self._timeout)
                async with pool.connection() as conn:
                    if self._migrate:
                        await schema.apply_pending(conn, self.where)
                    version = await schema.current_version(conn)
            schema.check_current(version, self.where)
        except BaseException:
            await pool.close()
            raise
        return pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        pool = await self._ready()
        with rows.translate(self.where):
            async with pool.connection() as conn:
                yield conn

    async def _fetch(self, query: str, params: dict[str, Any]) -> list[DictRow]:
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query.encode(), params)
            return await cur.fetchall()

    async def _execute(self, query: str, params: dict[str, Any]) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return cur.rowcount

    async def save_task(self, task: StoredTask) -> None:
        """Insert ``task``, or replace the task with the same id; committed on return."""
        await self._execute(sql.SAVE_TASK, rows.task_params(task))

    async def get_task(self, task_id: str) -> StoredTask | None:
        """Return the task with this id, or None."""
        found = await self._fetch(sql.GET_TASK, {"task_id": task_id})
        with rows.translate(self.where):
            return rows.task_from_row(found[0]) if found else None

    async def unfinished_tasks(self) -> list[StoredTask]:
        """Return the tasks whose state is not terminal, oldest first."""
        found = await self._fetch(sql.UNFINISHED, {"terminal": rows.TERMINAL})
        with rows.translate(self.where):
            return [rows.task_from_row(row) for row in found]

    async def save_endpoint(self, config: TaskPushNotificationConfig) -> None:
        """Insert an endpoint, or replace the one with the same task id and address."""
        await self._execute(
            sql.SAVE_ENDPOINT,
            {
                **config.model_dump(include={"task_id", "address", "token"}),
                "options": endpoint_options(config),
            },
        )

    async def endpoints(self, task_id: str) -> list[TaskPushNotificationConfig]:
        """Return the endpoints registered for a task, in registration order."""
        found = await self._fetch(sql.ENDPOINTS, {"task_id": task_id})
        with rows.translate(self.where):
            return [
                endpoint_from_columns(row["task_id"], row["address"], row["token"], row["options"])
                for row in found
            ]

    async def forget_endpoints(self, task_id: str) -> None:
        """Delete every endpoint registered for a task."""
        await self._execute(
            "DELETE FROM mqttpush_endpoints WHERE task_id = %(task_id)s", {"task_id": task_id}
        )

    async def save_delivery(self, delivery: Delivery) -> None:
        """Insert a delivery, or replace the one with the same key; committed on return."""
        await self._execute(sql.SAVE_DELIVERY, rows.delivery_params(delivery))

    async def save_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Save several deliveries in one transaction (pipelined); committed on return."""
        if not deliveries:
            return
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.executemany(
                sql.SAVE_DELIVERY.encode(), [rows.delivery_params(d) for d in deliveries]
            )

    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Return a task's deliveries, ordered by ``seq``, then ``endpoint``."""
        found = await self._fetch(sql.DELIVERIES, {"task_id": task_id})
        with rows.translate(self.where):
            return [rows.delivery_from_row(row) for row in found]

    async def delivery_summary(self, task_id: str) -> dict[DeliveryState, int]:
        """Return how many of a task's deliveries are in each state."""
        found = await self._fetch(sql.SUMMARY, {"task_id": task_id})
        with rows.translate(self.where):
            counts = {DeliveryState(row["state"]): int(row["n"]) for row in found}
        return {state: counts[state] for state in DeliveryState if state in counts}

    async def prune(self, keep_finished: int) -> int:
        """Delete the oldest finished tasks beyond ``keep_finished`` in one transaction."""
        if keep_finished < 0:
            raise ValueError(f"keep_finished must be >= 0, got {keep_finished}")
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(
                sql.PRUNE_TASKS.encode(), {"terminal": rows.TERMINAL, "keep": keep_finished}
            )
            ids = [row[0] for row in await cur.fetchall()]
            for table in ("mqttpush_endpoints", "mqttpush_deliveries"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE task_id = ANY(%(ids)s)".encode(),  # noqa: S608
                    {"ids": ids},
                )
        return len(ids)

    async def create_task(self, task: StoredTask, owner: str, ttl: float) -> Lease | None:
        """Insert a new task leased to ``owner``; None if the id exists already."""
        check_lease_args(ttl)
        params = {**rows.task_params(task), "owner": owner, "ttl": ttl}
        found = await self._fetch(sql.CREATE_TASK, params)
        return rows.lease_from(task.task_id, owner, found)

    async def acquire_lease(self, task_id: str, owner: str, ttl: float) -> Lease | None:
        """Lease an unfinished task to ``owner`` unless another owner's lease is live."""
        check_lease_args(ttl)
        params = {"task_id": task_id, "owner": owner, "ttl": ttl, "terminal": rows.TERMINAL}
        return rows.lease_from(task_id, owner, await self._fetch(sql.ACQUIRE_LEASE, params))

    async def renew_leases(self, owner: str, ttl: float) -> set[str]:
        """Extend ``owner``'s leases on unfinished tasks; return the ids it still holds."""
        check_lease_args(ttl)
        params = {"owner": owner, "ttl": ttl, "terminal": rows.TERMINAL}
        await self._ready()
        found = await self.leases_connection.fetch(sql.RENEW_LEASES, params)
        return {row["task_id"] for row in found}

    async def release_leases(self, owner: str, task_ids: Sequence[str] | None = None) -> int:
        """Give up ``owner``'s leases (all, or those on ``task_ids``); return how many."""
        ids = None if task_ids is None else list(task_ids)
        return await self._execute(sql.RELEASE_LEASES, {"owner": owner, "task_ids": ids})

    async def lease(self, task_id: str) -> Lease | None:
        """Return the task's lease, or None."""
        found = await self._fetch(sql.GET_LEASE, {"task_id": task_id})
        if not found:
            return None
        return Lease(task_id, found[0]["owner"], found[0]["lease_expires"].astimezone(UTC))

    async def take_over_expired(self, owner: str, ttl: float, limit: int = 100) -> list[TakenOver]:
        """Claim unfinished tasks with an expired lease or none, oldest first, atomically."""
        check_lease_args(ttl, limit)
        params = {"owner": owner, "ttl": ttl, "limit": limit, "terminal": rows.TERMINAL}
        await self._ready()
        found = await self.leases_connection.fetch(sql.TAKE_OVER, params)
        found.sort(key=lambda row: (row["created_at"], row["pos"]))
        with rows.translate(self.where):
            return [
                TakenOver(
                    rows.task_from_row(row),
                    Lease(row["task_id"], owner, row["lease_expires"].astimezone(UTC)),
                    row["previous_owner"],
                )
                for row in found
            ]

    async def reserve_seq(self, task_id: str, count: int = 1) -> range | None:
        """Reserve the next ``count`` sequence numbers of a task; None if it is unknown."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        found = await self._fetch(sql.RESERVE_SEQ, {"task_id": task_id, "count": count})
        if not found:
            return None
        last = int(found[0]["pushed"])
        return range(last - count + 1, last + 1)

    async def close(self) -> None:
        """Close the pool; later calls raise :class:`~mqttpush.errors.StoreError`."""
        self._closed = True
        pool, self._pool = self._pool, None
        with rows.translate(self.where):
            await self.leases_connection.close()
            if pool is not None:
                await pool.close()
