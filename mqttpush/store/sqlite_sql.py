"""The SQL of the SQLite task store: its schema steps, statements and row mapping.

Every step in :data:`MIGRATIONS` takes the file from the version before it to its own;
``PRAGMA user_version`` holds the version reached.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pydantic_core

from mqttpush.models import ErrorInfo, TaskState
from mqttpush.store.base import Delivery, DeliveryState, StoredTask

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "delivery_from_row",
    "from_text",
    "task_from_row",
    "task_row",
    "to_text",
    "transaction",
]

_V1 = """
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

# Task ownership by lease: the owner's id and when its lease ends (ISO text in UTC).
_V2 = """
ALTER TABLE tasks ADD COLUMN owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_expires TEXT;
CREATE INDEX IF NOT EXISTS tasks_by_owner ON tasks (owner);
"""

# A registration's options (filter, format, rate) as JSON text, or NULL for the defaults.
_V3 = """
ALTER TABLE endpoints ADD COLUMN options TEXT;
"""

# The replies a pool shares to answer repeated requests: a claim (owner, until when) and,
# once the request ran, its reply; rowid order is age order.
_V4 = """
CREATE TABLE IF NOT EXISTS replies (
    key           TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    claim_expires TEXT NOT NULL,
    reply         BLOB,
    size          INTEGER NOT NULL
);
"""

#: The schema steps, in order: step ``i`` takes a file from version ``i`` to ``i + 1``.
MIGRATIONS = (_V1, _V2, _V3, _V4)
#: The schema this module writes; kept in ``PRAGMA user_version``.
SCHEMA_VERSION = len(MIGRATIONS)

# Upserts, not INSERT OR REPLACE: a replaced row keeps its rowid, hence its place in
# registration order (endpoints) and in the tie-break order (tasks). ``pushed`` never
# goes down (another process may have reserved numbers), and the lease is left alone.
SAVE_TASK = """
INSERT INTO tasks (task_id, state, params, result, error, created_at, updated_at, pushed)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (task_id) DO UPDATE SET
    state = excluded.state, params = excluded.params, result = excluded.result,
    error = excluded.error, created_at = excluded.created_at,
    updated_at = excluded.updated_at, pushed = MAX(pushed, excluded.pushed)
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

CREATE_TASK = f"""
INSERT INTO tasks ({TASK_COLUMNS}, owner, lease_expires)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (task_id) DO NOTHING
RETURNING task_id
"""  # noqa: S608 - constants only
# Parameters: owner, expires, task_id, *TERMINAL, owner, now.
ACQUIRE_LEASE = f"""
UPDATE tasks SET owner = ?, lease_expires = ?
WHERE task_id = ? AND state NOT IN {IN_TERMINAL}
    AND (owner IS NULL OR owner = ? OR lease_expires <= ?)
RETURNING task_id
"""  # noqa: S608 - constants only
# Parameters: expires, owner, *TERMINAL.
RENEW_LEASES = f"""
UPDATE tasks SET lease_expires = ?
WHERE owner = ? AND state NOT IN {IN_TERMINAL}
RETURNING task_id
"""  # noqa: S608 - constants only
# Parameters: *TERMINAL, now, owner, limit.
EXPIRED = f"""
SELECT {TASK_COLUMNS}, owner FROM tasks
WHERE state NOT IN {IN_TERMINAL}
    AND (owner IS NULL OR (lease_expires <= ? AND owner != ?))
ORDER BY created_at, rowid
LIMIT ?
"""  # noqa: S608 - constants only


def to_text(value: datetime) -> str:
    """A datetime as stored: fixed-width ISO 8601 in UTC, so text order is time order."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """A stored datetime back (timezone-aware)."""
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


def task_row(task: StoredTask) -> tuple[str | int | None, ...]:
    """The column values of a task, in ``TASK_COLUMNS`` order."""
    return (
        task.task_id,
        task.state.value,
        pydantic_core.to_json(task.params).decode(),
        pydantic_core.to_json(task.result).decode(),
        None if task.error is None else task.error.model_dump_json(),
        to_text(task.created_at),
        to_text(task.updated_at),
        task.pushed,
    )


def task_from_row(row: sqlite3.Row) -> StoredTask:
    """A task from its row (``ValueError`` when the row does not decode)."""
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
    """A delivery from its row (``ValueError`` when the row does not decode)."""
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
