"""A task store in one SQLite file (stdlib ``sqlite3``), for senders that must survive restarts.

Durability: the file is in WAL mode with ``synchronous=NORMAL``. Every save is committed
before its method returns, so a killed process (even ``kill -9``) loses nothing that was
saved; the operating system still holds the write. A power loss or OS crash, however, may
lose the last few transactions (never corrupt the file), because commits are not flushed
to disk one by one. That trade-off buys saves that cost microseconds instead of an fsync.

The schema version is kept in ``PRAGMA user_version``; a file written by a newer
mqttpush is refused rather than misread. Push tokens are stored as given, so the file is
created readable by its owner only.

Columns: JSON values as JSON text, datetimes as ISO 8601 text in UTC (which sorts in time
order). Every ``sqlite3`` error is raised again as :class:`~mqttpush.errors.StoreError`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pydantic_core

from mqttpush.errors import StoreError
from mqttpush.store.base import Delivery, DeliveryState, StoredTask, TaskStore
from mqttpush.store.sqlite_rows import (
    DELIVERY_COLUMNS,
    IN_TERMINAL,
    MIGRATIONS,
    SAVE_DELIVERY,
    SAVE_ENDPOINT,
    SAVE_TASK,
    SCHEMA,
    SCHEMA_VERSION,
    TASK_COLUMNS,
    TERMINAL,
    delivery_from_row,
    endpoint_from_row,
    endpoint_options,
    task_from_row,
    to_text,
    transaction,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from mqttpush.models import TaskPushNotificationConfig

__all__ = ["SCHEMA_VERSION", "SqliteTaskStore"]


class SqliteTaskStore(TaskStore):
    """A :class:`~mqttpush.store.TaskStore` in one SQLite file, opened (and created) at once.

    The methods are ``async`` for the port's sake but run ``sqlite3`` synchronously on the
    event loop: each is one or a few small statements on a local file, well under a
    millisecond, which costs less than handing them to a thread. :meth:`prune` over a
    large backlog is the one call that may take longer.

    Args:
        path: The database file; missing parent folders are created.

    Raises:
        StoreError: The file is not a task store, is damaged, or was written by a
            newer mqttpush (its schema version is unknown).
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
        with transaction(db):
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"task store {self.path}: schema version {version} is newer than "
                    f"{SCHEMA_VERSION}, the newest this mqttpush knows; upgrade mqttpush"
                )
            if 0 < version < SCHEMA_VERSION:
                for step in range(version, SCHEMA_VERSION):
                    db.execute(MIGRATIONS[step])
            elif version < SCHEMA_VERSION:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if version < SCHEMA_VERSION:
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
        params = pydantic_core.to_json(task.params).decode()
        result = pydantic_core.to_json(task.result).decode()
        error = None if task.error is None else task.error.model_dump_json()
        db = self._conn()
        with self._errors():
            db.execute(
                SAVE_TASK,
                (
                    task.task_id,
                    task.state.value,
                    params,
                    result,
                    error,
                    to_text(task.created_at),
                    to_text(task.updated_at),
                    task.pushed,
                ),
            )

    async def get_task(self, task_id: str) -> StoredTask | None:
        """Return the task with this id, or None."""
        db = self._conn()
        with self._errors():
            row = db.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ?",  # noqa: S608 - constant
                (task_id,),
            ).fetchone()
            return None if row is None else task_from_row(row)

    async def unfinished_tasks(self) -> list[StoredTask]:
        """Return the tasks whose state is not terminal, oldest first."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE state NOT IN {IN_TERMINAL} "  # noqa: S608 - constants
                "ORDER BY created_at, rowid",
                TERMINAL,
            ).fetchall()
            return [task_from_row(row) for row in rows]

    async def save_endpoint(self, config: TaskPushNotificationConfig) -> None:
        """Insert an endpoint, or replace the one with the same task id and address."""
        db = self._conn()
        with self._errors():
            db.execute(
                SAVE_ENDPOINT,
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
            return [endpoint_from_row(row) for row in rows]

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
                to_text(d.updated_at),
            )
            for d in deliveries
        ]
        with self._errors(), transaction(db):
            db.executemany(SAVE_DELIVERY, rows)

    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Return a task's deliveries, ordered by ``seq``, then ``endpoint``."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE task_id = ? "  # noqa: S608 - constant
                "ORDER BY seq, endpoint",
                (task_id,),
            ).fetchall()
            return [delivery_from_row(row) for row in rows]

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
        with self._errors(), transaction(db):
            doomed = db.execute(
                f"SELECT task_id FROM tasks WHERE state IN {IN_TERMINAL} "  # noqa: S608 - constants
                "ORDER BY updated_at DESC, rowid DESC LIMIT -1 OFFSET ?",
                (*TERMINAL, keep_finished),
            ).fetchall()
            ids = [(row[0],) for row in doomed]
            for table in ("deliveries", "endpoints", "tasks"):
                db.executemany(f"DELETE FROM {table} WHERE task_id = ?", ids)  # noqa: S608
        return len(ids)

    async def close(self) -> None:
        """Close the file; later calls raise :class:`~mqttpush.errors.StoreError`."""
        db, self._db = self._db, None
        if db is not None:
            with self._errors():
                db.close()
