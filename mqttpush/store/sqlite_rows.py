"""The SQLite task store's schema and statements, and its rows to and from stored shapes.

Columns: JSON values as JSON text, datetimes as ISO 8601 text in UTC (which sorts in time
order).
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mqttpush.models import ErrorInfo, TaskPushNotificationConfig, TaskState
from mqttpush.store.base import Delivery, DeliveryState, StoredTask

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator

__all__ = [
    "DELIVERY_COLUMNS",
    "IN_TERMINAL",
    "MIGRATIONS",
    "SAVE_DELIVERY",
    "SAVE_ENDPOINT",
    "SAVE_TASK",
    "SCHEMA",
    "SCHEMA_VERSION",
    "TASK_COLUMNS",
    "TERMINAL",
    "delivery_from_row",
    "endpoint_from_row",
    "endpoint_options",
    "from_text",
    "task_from_row",
    "to_text",
    "transaction",
]

#: The schema this module writes; kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 2
#: From each older schema version to the next (version 1 had no endpoint options).
MIGRATIONS = {1: "ALTER TABLE endpoints ADD COLUMN options TEXT"}

SCHEMA = """
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
    options TEXT,  -- JSON: filter, format and rate of the registration, or NULL
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
SAVE_TASK = """
INSERT INTO tasks (task_id, state, params, result, error, created_at, updated_at, pushed)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (task_id) DO UPDATE SET
    state = excluded.state, params = excluded.params, result = excluded.result,
    error = excluded.error, created_at = excluded.created_at,
    updated_at = excluded.updated_at, pushed = excluded.pushed
"""
SAVE_ENDPOINT = """
INSERT INTO endpoints (task_id, address, token, options) VALUES (?, ?, ?, ?)
ON CONFLICT (task_id, address) DO UPDATE SET token = excluded.token, options = excluded.options
"""
SAVE_DELIVERY = """
INSERT INTO deliveries
    (notification_id, endpoint, task_id, seq, state, attempts, detail, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (notification_id, endpoint) DO UPDATE SET
    task_id = excluded.task_id, seq = excluded.seq, state = excluded.state,
    attempts = excluded.attempts, detail = excluded.detail, updated_at = excluded.updated_at
"""
TASK_COLUMNS = "task_id, state, params, result, error, created_at, updated_at, pushed"
DELIVERY_COLUMNS = "notification_id, task_id, seq, endpoint, state, attempts, detail, updated_at"
TERMINAL = tuple(state.value for state in TaskState if state.is_terminal)
IN_TERMINAL = f"({', '.join('?' * len(TERMINAL))})"


def to_text(value: datetime) -> str:
    """A datetime as fixed-width ISO 8601 text in UTC, so text order is time order."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """The datetime written by :func:`to_text`."""
    return datetime.fromisoformat(text)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Group the statements inside into one transaction (the connection is in autocommit)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def task_from_row(row: sqlite3.Row) -> StoredTask:
    """A task row as the store's shape."""
    return StoredTask(
        task_id=row["task_id"],
        state=TaskState(row["state"]),
        params=json.loads(row["params"]),
        result=json.loads(row["result"]),
        error=None if row["error"] is None else ErrorInfo.model_validate_json(row["error"]),
        created_at=from_text(row["created_at"]),
        updated_at=from_text(row["updated_at"]),
        pushed=row["pushed"],
    )


def delivery_from_row(row: sqlite3.Row) -> Delivery:
    """A delivery row as the store's shape."""
    return Delivery(
        notification_id=row["notification_id"],
        task_id=row["task_id"],
        seq=row["seq"],
        endpoint=row["endpoint"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        detail=row["detail"],
        updated_at=from_text(row["updated_at"]),
    )


_OPTIONS = {"filter", "format", "rate"}


def endpoint_options(config: TaskPushNotificationConfig) -> str | None:
    """A registration's options as JSON text; None when all are the defaults."""
    options = config.model_dump(
        mode="json", include=_OPTIONS, exclude_none=True, exclude_defaults=True
    )
    return json.dumps(options, separators=(",", ":")) if options else None


def endpoint_from_row(row: sqlite3.Row) -> TaskPushNotificationConfig:
    """An endpoint row as the registration it stores."""
    options = json.loads(row["options"]) if row["options"] else {}
    return TaskPushNotificationConfig.model_validate(
        {"task_id": row["task_id"], "address": row["address"], "token": row["token"], **options}
    )
