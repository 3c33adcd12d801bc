"""Between live task records and the durable store: snapshots and the store to open."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.models import DeliveryState, TaskStatus
from mqttpush.store import MemoryTaskStore, SqliteTaskStore, StoredTask

if TYPE_CHECKING:
    from pathlib import Path

    from mqttpush.agent.tasks import TaskRecord
    from mqttpush.store import TaskStore

__all__ = ["open_store", "status_of", "stored_task"]


def open_store(path: Path | None) -> TaskStore:
    """A SQLite store at ``path``, or an in-memory one when there is no path."""
    return MemoryTaskStore() if path is None else SqliteTaskStore(path)


def stored_task(record: TaskRecord) -> StoredTask:
    """The durable snapshot of a live task."""
    return StoredTask(
        task_id=record.task_id,
        state=record.state,
        params=record.params,
        result=record.result,
        error=record.error,
        created_at=record.created_at,
        updated_at=record.updated_at or record.created_at,
        pushed=max(record.pushed, record.seq_reserved),
    )


def status_of(stored: StoredTask, deliveries: dict[DeliveryState, int]) -> TaskStatus:
    """The wire status of a task known only to the store (finished before a restart)."""
    return TaskStatus(
        task_id=stored.task_id,
        state=stored.state,
        result=stored.result,
        error=stored.error,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
        deliveries=deliveries,
    )
