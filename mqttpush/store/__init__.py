"""Task stores: where a sender keeps tasks, push endpoints and deliveries across restarts.

:class:`MemoryTaskStore` is the default; :class:`SqliteTaskStore` survives the process.
"""

from mqttpush.store.base import Delivery, DeliveryState, StoredTask, TaskStore
from mqttpush.store.memory import MemoryTaskStore
from mqttpush.store.sqlite import SqliteTaskStore

__all__ = [
    "Delivery",
    "DeliveryState",
    "MemoryTaskStore",
    "SqliteTaskStore",
    "StoredTask",
    "TaskStore",
]
