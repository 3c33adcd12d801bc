"""A task store in one SQLite file (stdlib ``sqlite3``), for senders that must survive restarts.

Durability: the file is in WAL mode with ``synchronous=NORMAL``. Every save is committed
before its method returns, so a killed process (even ``kill -9``) loses nothing that was
saved; the operating system still holds the write. A power loss or OS crash, however, may
lose the last few transactions (never corrupt the file), because commits are not flushed
to disk one by one. That trade-off buys saves that cost microseconds instead of an fsync.

The schema version is kept in ``PRAGMA user_version``; an older file is upgraded when
opened, and a file written by a newer mqttpush is refused rather than misread. Push tokens
are stored as given, so the file is created readable by its owner only.

Columns: JSON values as JSON text, datetimes as ISO 8601 text in UTC (which sorts in time
order). Every ``sqlite3`` error is raised again as :class:`~mqttpush.errors.StoreError`.

Several processes on one machine may share the file: leases, take-overs and sequence
reservations are single statements or ``BEGIN IMMEDIATE`` transactions, hence atomic.
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from mqttpush.errors import StoreError, StoreSchemaError
from mqttpush.store import sqlite_sql as sql
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
from mqttpush.store.records import check_lease_args
from mqttpush.store.sqlite_replies import SqliteReplies
from mqttpush.store.sqlite_sql import SCHEMA_VERSION

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from mqttpush.models import TaskPushNotificationConfig

__all__ = ["SCHEMA_VERSION", "SqliteTaskStore"]


class SqliteTaskStore(SqliteReplies, TaskStore):
    """A :class:`~mqttpush.store.TaskStore` in one SQLite file, opened (and created) at once.

    The methods are ``async`` for the port's sake but run ``sqlite3`` synchronously on the
    event loop: each is one or a few small statements on a local file, well under a
    millisecond, which costs less than handing them to a thread. :meth:`prune` over a
    large backlog is the one call that may take longer.

    Args:
        path: The database file; missing parent folders are created.

    Raises:
        StoreError: The file is not a task store or is damaged.
        StoreSchemaError: The file was written by a newer mqttpush (its schema version
            is unknown).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        with self._errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(mode=0o600, exist_ok=True)
            # Autocommit: every statement is its own committed transaction unless
            # an explicit BEGIN groups several (schema creation, prune).
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                db.row_factory = sqlite3.Row
                self._open(db)
            except BaseException:
                db.close()
                raise
        self._db = db

    def _open(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        with sql.transaction(db):
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreSchemaError(
                    f"task store {self.path}: schema version {version} is newer than "
                    f"{SCHEMA_VERSION}, the newest this mqttpush knows; upgrade mqttpush"
                )
            for step in sql.MIGRATIONS[version:]:
                for statement in step.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Raise ``sqlite3`` and decoding errors again as StoreError (the one place)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"task store {self.path}: {exc}") from exc
        except (ValueError, OSError) as exc:  # a row that does not decode; a folder we cannot make
            raise StoreError(f"task store {self.path}: damaged or unusable: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"task store {self.path} is closed")
        return self._db

    async def save_task(self, task: StoredTask) -> None:
        """Insert ``task``, or replace the task with the same id; committed on return."""
        db = self._conn()
        with self._errors():
            db.execute(sql.SAVE_TASK, sql.task_row(task))

    async def get_task(self, task_id: str) -> StoredTask | None:
        """Return the task with this id, or None."""
        db = self._conn()
        with self._errors():
            row = db.execute(
                f"SELECT {sql.TASK_COLUMNS} FROM tasks WHERE task_id = ?",  # noqa: S608 - constant
                (task_id,),
            ).fetchone()
            return None if row is None else sql.task_from_row(row)

    async def unfinished_tasks(self) -> list[StoredTask]:
        """Return the tasks whose state is not terminal, oldest first."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                f"SELECT {sql.TASK_COLUMNS} FROM tasks WHERE state NOT IN {sql.IN_TERMINAL} "  # noqa: S608 - constants
                "ORDER BY created_at, rowid",
                sql.TERMINAL,
            ).fetchall()
            return [sql.task_from_row(row) for row in rows]

    async def save_endpoint(self, config: TaskPushNotificationConfig) -> None:
        """Insert an endpoint, or replace the one with the same task id and address."""
        db = self._conn()
        with self._errors():
            db.execute(
                sql.SAVE_ENDPOINT,
                (config.task_id, config.address, config.token, endpoint_options(config)),
            )

    async def endpoints(self, task_id: str) -> list[TaskPushNotificationConfig]:
        """Return the endpoints registered for a task, in registration order."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                "SELECT task_id, address, token, options FROM endpoints WHERE task_id = ? "
                "ORDER BY rowid",
                (task_id,),
            ).fetchall()
            return [endpoint_from_columns(*row) for row in rows]

    async def forget_endpoints(self, task_id: str) -> None:
        """Delete every endpoint registered for a task."""
        db = self._conn()
        with self._errors():
            db.execute("DELETE FROM endpoints WHERE task_id = ?", (task_id,))

    async def save_delivery(self, delivery: Delivery) -> None:
        """Insert a delivery, or replace the one with the same key; committed on return."""
        await self.save_deliveries([delivery])

    async def save_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        """Save several deliveries in one transaction; committed on return."""
        db = self._conn()
        rows = [
            (
                d.notification_id,
                d.endpoint,
                d.task_id,
                d.seq,
                d.state.value,
                d.attempts,
                d.detail,
                sql.to_text(d.updated_at),
            )
            for d in deliveries
        ]
        with self._errors(), sql.transaction(db):
            db.executemany(sql.SAVE_DELIVERY, rows)

    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Return a task's deliveries, ordered by ``seq``, then ``endpoint``."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                f"SELECT {sql.DELIVERY_COLUMNS} FROM deliveries WHERE task_id = ? "  # noqa: S608 - constant
                "ORDER BY seq, endpoint",
                (task_id,),
            ).fetchall()
            return [sql.delivery_from_row(row) for row in rows]

    async def delivery_summary(self, task_id: str) -> dict[DeliveryState, int]:
        """Return how many of a task's deliveries are in each state."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                "SELECT state, COUNT(*) FROM deliveries WHERE task_id = ? GROUP BY state",
                (task_id,),
            ).fetchall()
            counts: dict[DeliveryState, int] = {DeliveryState(state): n for state, n in rows}
        return {state: counts[state] for state in DeliveryState if state in counts}

    async def prune(self, keep_finished: int) -> int:
        """Delete the oldest finished tasks beyond ``keep_finished`` in one transaction."""
        if keep_finished < 0:
            raise ValueError(f"keep_finished must be >= 0, got {keep_finished}")
        db = self._conn()
        with self._errors(), sql.transaction(db):
            doomed = db.execute(
                f"SELECT task_id FROM tasks WHERE state IN {sql.IN_TERMINAL} "  # noqa: S608 - constants
                "ORDER BY updated_at DESC, rowid DESC LIMIT -1 OFFSET ?",
                (*sql.TERMINAL, keep_finished),
            ).fetchall()
            ids = [(row[0],) for row in doomed]
            for table in ("deliveries", "endpoints", "tasks"):
                db.executemany(f"DELETE FROM {table} WHERE task_id = ?", ids)  # noqa: S608
        return len(ids)

    async def create_task(self, task: StoredTask, owner: str, ttl: float) -> Lease | None:
        """Insert a new task leased to ``owner``; None if the id exists already."""
        check_lease_args(ttl)
        db = self._conn()
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        with self._errors():
            row = db.execute(
                sql.CREATE_TASK, (*sql.task_row(task), owner, sql.to_text(expires))
            ).fetchone()
        return None if row is None else Lease(task.task_id, owner, expires)

    async def acquire_lease(self, task_id: str, owner: str, ttl: float) -> Lease | None:
        """Lease an unfinished task to ``owner`` unless another owner's lease is live."""
        check_lease_args(ttl)
        db = self._conn()
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=ttl)
        params = (owner, sql.to_text(expires), task_id, *sql.TERMINAL, owner, sql.to_text(now))
        with self._errors():
            row = db.execute(sql.ACQUIRE_LEASE, params).fetchone()
        return None if row is None else Lease(task_id, owner, expires)

    async def renew_leases(self, owner: str, ttl: float) -> set[str]:
        """Extend ``owner``'s leases on unfinished tasks; return the ids it still holds."""
        check_lease_args(ttl)
        db = self._conn()
        expires = sql.to_text(datetime.now(UTC) + timedelta(seconds=ttl))
        with self._errors():
            rows = db.execute(sql.RENEW_LEASES, (expires, owner, *sql.TERMINAL)).fetchall()
        return {row[0] for row in rows}

    async def release_leases(self, owner: str, task_ids: Sequence[str] | None = None) -> int:
        """Give up ``owner``'s leases (all, or those on ``task_ids``); return how many."""
        db = self._conn()
        release = "UPDATE tasks SET owner = NULL, lease_expires = NULL WHERE owner = ?"
        with self._errors(), sql.transaction(db):
            if task_ids is None:
                return db.execute(release, (owner,)).rowcount
            rows = [(owner, task_id) for task_id in task_ids]
            return db.executemany(f"{release} AND task_id = ?", rows).rowcount

    async def lease(self, task_id: str) -> Lease | None:
        """Return the task's lease, or None."""
        db = self._conn()
        with self._errors():
            row = db.execute(
                "SELECT owner, lease_expires FROM tasks WHERE task_id = ? AND owner IS NOT NULL",
                (task_id,),
            ).fetchone()
            return None if row is None else Lease(task_id, row[0], sql.from_text(row[1]))

    async def take_over_expired(self, owner: str, ttl: float, limit: int = 100) -> list[TakenOver]:
        """Claim unfinished tasks with an expired lease or none, oldest first, atomically."""
        check_lease_args(ttl, limit)
        db = self._conn()
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=ttl)
        with self._errors(), sql.transaction(db):  # BEGIN IMMEDIATE: one writer at a time
            rows = db.execute(
                sql.EXPIRED, (*sql.TERMINAL, sql.to_text(now), owner, limit)
            ).fetchall()
            db.executemany(
                "UPDATE tasks SET owner = ?, lease_expires = ? WHERE task_id = ?",
                [(owner, sql.to_text(expires), row["task_id"]) for row in rows],
            )
            claimed = []
            for row in rows:
                lease = Lease(row["task_id"], owner, expires)
                claimed.append(TakenOver(sql.task_from_row(row), lease, row["owner"]))
            return claimed

    async def reserve_seq(self, task_id: str, count: int = 1) -> range | None:
        """Reserve the next ``count`` sequence numbers of a task; None if it is unknown."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        db = self._conn()
        with self._errors():
            row = db.execute(
                "UPDATE tasks SET pushed = pushed + ? WHERE task_id = ? RETURNING pushed",
                (count, task_id),
            ).fetchone()
        return None if row is None else range(row[0] - count + 1, row[0] + 1)

    async def close(self) -> None:
        """Close the file; later calls raise :class:`~mqttpush.errors.StoreError`."""
        db, self._db = self._db, None
        if db is not None:
            with self._errors():
                db.close()
