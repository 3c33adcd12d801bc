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
order). Every ``sqlite3`` error is raised again as :class:`~mqttpush.errors.MqttPushError`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pydantic_core

from mqttpush.errors import MqttPushError
from mqttpush.models import ErrorInfo, TaskPushNotificationConfig, TaskState
from mqttpush.store.base import Delivery, DeliveryState, StoredTask, TaskStore

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["SCHEMA_VERSION", "SqliteTaskStore"]

#: The schema this module writes; kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id    TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    params     TEXT NOT NULL,  -- JSON
    result     TEXT NOT NULL,  -- JSON
    error      TEXT,           -- JSON ErrorInfo, or NULL
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    pushed     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    task_id TEXT NOT NULL,
    address TEXT NOT NULL,
    token   TEXT,
    PRIMARY KEY (task_id, address)
);
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    detail          TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (notification_id, endpoint)
);
CREATE INDEX IF NOT EXISTS deliveries_by_task ON deliveries (task_id, seq, endpoint);
"""

# Upserts, not INSERT OR REPLACE: a replaced row keeps its rowid, hence its place in
# registration order (endpoints) and in the tie-break order (tasks).
_SAVE_TASK = """
INSERT INTO tasks (task_id, state, params, result, error, created_at, updated_at, pushed)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (task_id) DO UPDATE SET
    state = excluded.state, params = excluded.params, result = excluded.result,
    error = excluded.error, created_at = excluded.created_at,
    updated_at = excluded.updated_at, pushed = excluded.pushed
"""
_SAVE_ENDPOINT = """
INSERT INTO endpoints (task_id, address, token) VALUES (?, ?, ?)
ON CONFLICT (task_id, address) DO UPDATE SET token = excluded.token
"""
_SAVE_DELIVERY = """
INSERT INTO deliveries
    (notification_id, endpoint, task_id, seq, state, attempts, detail, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (notification_id, endpoint) DO UPDATE SET
    task_id = excluded.task_id, seq = excluded.seq, state = excluded.state,
    attempts = excluded.attempts, detail = excluded.detail, updated_at = excluded.updated_at
"""
_TASK_COLUMNS = "task_id, state, params, result, error, created_at, updated_at, pushed"
_DELIVERY_COLUMNS = "notification_id, task_id, seq, endpoint, state, attempts, detail, updated_at"
_TERMINAL = tuple(state.value for state in TaskState if state.is_terminal)
_IN_TERMINAL = f"({', '.join('?' * len(_TERMINAL))})"


def _to_text(value: datetime) -> str:
    # Fixed width, always UTC: text order is time order.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Group the statements inside into one transaction (the connection is in autocommit)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _task_from_row(row: sqlite3.Row) -> StoredTask:
    return StoredTask(
        task_id=row["task_id"],
        state=TaskState(row["state"]),
        params=json.loads(row["params"]),
        result=json.loads(row["result"]),
        error=None if row["error"] is None else ErrorInfo.model_validate_json(row["error"]),
        created_at=_from_text(row["created_at"]),
        updated_at=_from_text(row["updated_at"]),
        pushed=row["pushed"],
    )


def _delivery_from_row(row: sqlite3.Row) -> Delivery:
    return Delivery(
        notification_id=row["notification_id"],
        task_id=row["task_id"],
        seq=row["seq"],
        endpoint=row["endpoint"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        detail=row["detail"],
        updated_at=_from_text(row["updated_at"]),
    )


class SqliteTaskStore(TaskStore):
    """A :class:`~mqttpush.store.TaskStore` in one SQLite file, opened (and created) at once.

    The methods are ``async`` for the port's sake but run ``sqlite3`` synchronously on the
    event loop: each is one or a few small statements on a local file, well under a
    millisecond, which costs less than handing them to a thread. :meth:`prune` over a
    large backlog is the one call that may take longer.

    Args:
        path: The database file; missing parent folders are created.

    Raises:
        MqttPushError: The file is not a task store, is damaged, or was written by a
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
        with _transaction(db):
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise MqttPushError(
                    f"task store {self.path}: schema version {version} is newer than "
                    f"{SCHEMA_VERSION}, the newest this mqttpush knows; upgrade mqttpush"
                )
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Raise ``sqlite3`` and decoding errors again as MqttPushError (the one place)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise MqttPushError(f"task store {self.path}: {exc}") from exc
        except (ValueError, OSError) as exc:  # a row that does not decode; a folder we cannot make
            raise MqttPushError(f"task store {self.path}: damaged or unusable: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise MqttPushError(f"task store {self.path} is closed")
        return self._db

    async def save_task(self, task: StoredTask) -> None:
        """Insert ``task``, or replace the task with the same id; committed on return."""
        params = pydantic_core.to_json(task.params).decode()
        result = pydantic_core.to_json(task.result).decode()
        error = None if task.error is None else task.error.model_dump_json()
        db = self._conn()
        with self._errors():
            db.execute(
                _SAVE_TASK,
                (
                    task.task_id,
                    task.state.value,
                    params,
                    result,
                    error,
                    _to_text(task.created_at),
                    _to_text(task.updated_at),
                    task.pushed,
                ),
            )

    async def get_task(self, task_id: str) -> StoredTask | None:
        """Return the task with this id, or None."""
        db = self._conn()
        with self._errors():
            row = db.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id = ?",  # noqa: S608 - constant
                (task_id,),
            ).fetchone()
            return None if row is None else _task_from_row(row)

    async def unfinished_tasks(self) -> list[StoredTask]:
        """Return the tasks whose state is not terminal, oldest first."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE state NOT IN {_IN_TERMINAL} "  # noqa: S608 - constants
                "ORDER BY created_at, rowid",
                _TERMINAL,
            ).fetchall()
            return [_task_from_row(row) for row in rows]

    async def save_endpoint(self, config: TaskPushNotificationConfig) -> None:
        """Insert an endpoint, or replace the one with the same task id and address."""
        db = self._conn()
        with self._errors():
            db.execute(_SAVE_ENDPOINT, (config.task_id, config.address, config.token))

    async def endpoints(self, task_id: str) -> list[TaskPushNotificationConfig]:
        """Return the endpoints registered for a task, in registration order."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                "SELECT task_id, address, token FROM endpoints WHERE task_id = ? ORDER BY rowid",
                (task_id,),
            ).fetchall()
            return [TaskPushNotificationConfig.model_validate(dict(row)) for row in rows]

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
                _to_text(d.updated_at),
            )
            for d in deliveries
        ]
        with self._errors(), _transaction(db):
            db.executemany(_SAVE_DELIVERY, rows)

    async def deliveries(self, task_id: str) -> list[Delivery]:
        """Return a task's deliveries, ordered by ``seq``, then ``endpoint``."""
        db = self._conn()
        with self._errors():
            rows = db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE task_id = ? "  # noqa: S608 - constant
                "ORDER BY seq, endpoint",
                (task_id,),
            ).fetchall()
            return [_delivery_from_row(row) for row in rows]

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
        with self._errors(), _transaction(db):
            doomed = db.execute(
                f"SELECT task_id FROM tasks WHERE state IN {_IN_TERMINAL} "  # noqa: S608 - constants
                "ORDER BY updated_at DESC, rowid DESC LIMIT -1 OFFSET ?",
                (*_TERMINAL, keep_finished),
            ).fetchall()
            ids = [(row[0],) for row in doomed]
            for table in ("deliveries", "endpoints", "tasks"):
                db.executemany(f"DELETE FROM {table} WHERE task_id = ?", ids)  # noqa: S608
        return len(ids)

    async def close(self) -> None:
        """Close the file; later calls raise :class:`~mqttpush.errors.MqttPushError`."""
        db, self._db = self._db, None
        if db is not None:
            with self._errors():
                db.close()
