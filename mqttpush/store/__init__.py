"""Task stores: where a sender keeps tasks, push endpoints and deliveries across restarts.

:class:`MemoryTaskStore` is the default; :class:`SqliteTaskStore` survives the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqttpush.store.base import Delivery, DeliveryState, StoredTask, TaskStore
from mqttpush.store.memory import MemoryTaskStore
from mqttpush.store.sqlite import SqliteTaskStore

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "Delivery",
    "DeliveryState",
    "MemoryTaskStore",
    "SqliteTaskStore",
    "StoredTask",
    "TaskStore",
    "open_store",
]


def open_store(path: Path | None) -> TaskStore:
    """A SQLite store at ``path``, or an in-memory one when there is no path."""
    return MemoryTaskStore() if path is None else SqliteTaskStore(path)
